"""The ``kqcodec`` command: argument parsing and exit codes, nothing else.

Each subcommand calls one library function.  Errors kqcodec expects become
one line on stderr and the exit code of their class (see :mod:`errors`);
anything else is a bug and keeps its traceback.  Heavy modules are imported
inside the commands so that ``--help`` is instant.
"""

import argparse
import atexit
import contextlib
import errno
import os
import signal
import stat
import sys
import threading
import warnings

from . import __version__
from .defaults import (DEFAULT_SPEED, ENGINES, K_RANGE, MAX_PIXELS, METRICS, REPORT_FORMATS,
                       REPORT_KS, REPORT_METRICS, SPACES, SPEEDS, TARGET_PSNR)
from .errors import (InputError, KqcodecError, OutputExistsError, UsageError, WriteError,
                     as_flag)
from .heap import keep_freed_memory

EPILOG = """\
exit codes:
  0   success
  1   report or batch encode: some pictures failed (the others are written)
  2   bad usage, e.g. k outside 2..256 or an unknown output extension
  65  input is not a readable image, is corrupt, or is over --max-pixels
  66  input missing or unreadable
  73  output exists (without --force) or output is the input
  74  writing the output failed (nothing is left behind)
  98  --skip-if-larger: the palette PNG would not be smaller; nothing written
  99  -k auto: no palette size meets --target-psnr or --max-bytes; nothing written
  130 interrupted
  143 terminated (kill)
"""



class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, like every other error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _integer(text, low, high, what):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be an integer, not {text!r}") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{what} must be from {low} to {high}, not {value}")
    return value


def file_name(text):
    """Parse a file or folder name: any but the empty one, which Python reads as '.'."""
    if not text:
        raise argparse.ArgumentTypeError("an empty name")
    return text


def k_value(text):
    """Parse a palette size, 2..256."""
    return _integer(text, K_RANGE.start, K_RANGE[-1], "k")


def k_or_auto(text):
    """Parse a palette size, 2..256, or 'auto'."""
    return "auto" if text == "auto" else _integer(text, K_RANGE.start, K_RANGE[-1], "k")


def psnr_value(text):
    """Parse a target PSNR: a positive, finite number of dB."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"the PSNR must be a number of dB, not {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"the PSNR must be a positive number of dB, not {text}")
    return value


def score_value(text):
    """Parse a target SSIMULACRA2 score: a finite number, at most 100 (identical pictures)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"the score must be a number, not {text!r}") from None
    if not -float("inf") < value <= 100:
        raise argparse.ArgumentTypeError(f"the score must be a number up to 100, not {text}")
    return value


def seed_value(text):
    """Parse a seed, 0..2**32-1."""
    return _integer(text, 0, 2**32 - 1, "the seed")


def pixel_limit(text):
    """Parse --max-pixels: a positive integer, or 0 for no limit."""
    return _integer(text, 0, 2**63 - 1, "the limit") or None


def speed_value(text):
    """Parse an effort level, 1..10."""
    return _integer(text, SPEEDS.start, SPEEDS.stop - 1, "the speed")


def positive_int(text):
    """Parse a positive integer."""
    return _integer(text, 1, 2**31 - 1, "the number")


def _add_common(sub):
    sub.add_argument("--force", action="store_true",
                     help="replace output files that exist (never an input)")
    sub.add_argument("--strict", action="store_true",
                     help="refuse a PNG input that breaks any rule of the format; by default "
                          "what cannot change a pixel (a damaged ancillary chunk, data after "
                          "the image) is skipped with a warning, as libpng does")
    sub.add_argument("--max-pixels", type=pixel_limit, default=MAX_PIXELS, metavar="N",
                     help="refuse inputs with more pixels than N, before decoding them "
                          "(default %(default)s; 0 = no limit)")


def _number(text, low, high, what):
    """Parse a number from `low` to `high`; `what` names it in the error."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be a number, not {text!r}") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{what} must be from {low:g} to {high:g}, not {text}")
    return value


def strength_value(text):
    """Parse a dithering strength, 0..1."""
    return _number(text, 0.0, 1.0, "the strength")


def _add_dither(sub, refused):
    sub.add_argument("--dither", type=strength_value, nargs="?", const=1.0, default=0.0,
                     metavar="STRENGTH",
                     help="Floyd-Steinberg error diffusion, where it helps (smooth areas), with "
                          "this strength from 0 to 1 (1 if given alone); default: none, every "
                          "pixel gets its nearest color. Fewer visible bands, larger files, "
                          f"lower PSNR. Not with {refused} or --reuse")


def reuse_value(text):
    """Parse a reuse margin, 0..16 Oklab levels."""
    return _number(text, 0.0, 16.0, "the margin")


def _add_reuse(sub, refused):
    sub.add_argument("--reuse", type=reuse_value, nargs="?", const=1.0, default=0.0,
                     metavar="MARGIN",
                     help="let a pixel take a color at most MARGIN Oklab levels (x255) farther "
                          "than its nearest, 3 times that on edges and texture (1 if given "
                          "alone), where that makes runs of one index along the row or repeats "
                          "the row above; each row is chosen as a whole, and the palette "
                          "refitted to that mapping; default 0: nearest color. Smaller files, "
                          f"slightly lower fidelity. Not with {refused} or --dither")


def _add_space(sub):
    sub.add_argument("--space", choices=SPACES, default="rgb",
                     help="where the palette search measures color distances: rgb (default) "
                          "minimises the error PSNR measures; oklab, a perceptual space, spends "
                          "colors where eyes see differences (higher SSIMULACRA2, lower PSNR); "
                          "rgb+oklab adds the two errors: most of oklab's gain in SSIMULACRA2 "
                          "for a fraction of its PSNR loss; perceptual is oklab with smooth areas, "
                          "where errors show as bands, counting more than edges and texture")


def _items(text, what):
    """The items of a comma-separated list; an empty one (``2,,4``) is refused.

    A list with a hole in it is more likely a typo than a short list.
    """
    parts = [part.strip() for part in text.split(",")]
    if any(not part for part in parts):
        raise argparse.ArgumentTypeError(f"an empty item in {text!r}: give {what} separated by "
                                         "single commas")
    return parts


def metric_list(text):
    """Parse --metrics: a comma-separated list of psnr, ssim, ssimulacra2."""
    names = {part.lower() for part in _items(text, "measures")}
    unknown = sorted(names - set(METRICS))
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown measure {', '.join(unknown)}; use {', '.join(METRICS)}")
    return tuple(m for m in METRICS if m in names)


def _add_speed(sub):
    sub.add_argument("--speed", type=speed_value, default=DEFAULT_SPEED, metavar="S",
                     help="effort, as in pngquant: 1 = smallest files and slowest, 10 = fastest "
                          "(default %(default)s); sets the palette search and the compression")


def build_parser(command=None):
    """Return the argument parser of the ``kqcodec`` command.

    Parameters
    ----------
    command : str, optional
        The one command whose arguments are needed (what the command line
        names); the others' are left out.  Adding every argument of all
        three took about 7 ms, 2% of an encode of a 1 MP photo.
    """
    parser = _Parser(
        prog="kqcodec",
        description="k-means color quantization to true palette PNGs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"kqcodec {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    for name, make in _COMMANDS.items():
        if command in (None, name):
            make(commands)
        else:
            commands.add_parser(name, help=_HELP[name])
    return parser


def _encode_parser(commands):
    """The ``encode`` command's parser, with all its arguments."""
    enc = commands.add_parser(
        "encode", help=_HELP["encode"],
        # argparse's own line would show one list of INPUTs, never OUTPUT.
        usage="%(prog)s INPUT OUTPUT -k K [options]\n"
              "       %(prog)s INPUT... --out-dir DIR -k K [options]",
        description="Quantize INPUT (PNG, JPEG, WebP, GIF, BMP, TIFF) to at most K colors "
                    "by k-means and write OUTPUT as a palette PNG (color type 3, 1/2/4/8-bit).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    enc.add_argument("paths", nargs="+", type=file_name, metavar="INPUT",
                     help="INPUT OUTPUT: the picture and the palette PNG to write ('-' for "
                          "standard input or output); with --out-dir, any number of pictures "
                          "and folders")
    enc.add_argument("-k", "--colors", dest="k", type=k_or_auto, required=True, metavar="K",
                     help="palette size, 2 to 256, or 'auto': the size that meets "
                          "--target-psnr or --max-bytes")
    target = enc.add_argument_group("targets (with -k auto)")
    target.add_argument("--target-psnr", type=psnr_value, metavar="DB",
                        help="the fewest colors whose file reaches this PSNR (dB); exit 99 "
                             "if --max-colors colors fall short")
    target.add_argument("--max-bytes", type=positive_int, metavar="N",
                        help="the most colors whose file fits in N bytes; exit 99 if 2 "
                             "colors do not fit")
    target.add_argument("--max-colors", type=k_value, default=None, metavar="K",
                        help="the largest palette the search considers (default 256)")
    enc.add_argument("--skip-if-larger", action="store_true",
                     help="write nothing when the palette PNG would not be smaller than the "
                          "input file (exit 98; in a batch, counted as skipped)")
    batch = enc.add_argument_group("batch (with --out-dir)")
    batch.add_argument("--out-dir", type=file_name, metavar="DIR",
                       help="encode every INPUT (files, and the pictures in folders) into DIR "
                            "as <stem><suffix>.png; go on past pictures that fail (exit 1)")
    batch.add_argument("--recursive", action="store_true",
                       help="also take pictures in the folders' sub-folders (mirrored in DIR)")
    batch.add_argument("--suffix", default="", metavar="TEXT",
                       help="added to each output's stem, e.g. --suffix=-k64 (default none)")
    batch.add_argument("--jobs", type=positive_int, default=None, metavar="N",
                       help="pictures encoded in parallel (default: all cores)")
    batch.add_argument("--shared-palette", action="store_true",
                       help="one palette of K colors for all the pictures (their colors "
                            "counted together, each weighted by its pixels): every file gets the "
                            "same PLTE and tRNS bytes; searched in RGB by kqcodec's engine, not "
                            "with -k auto, --dither, --reuse, --space or --engine")
    batch.add_argument("--quiet", action="store_true", help="no progress bar")
    enc.add_argument("--seed", type=seed_value, default=0, metavar="N",
                     help="seed of the sklearn engine's initialisation (default 0); kqcodec's "
                          "own search is deterministic and does not use it")
    enc.add_argument("--engine", choices=ENGINES, default="kqcodec",
                     help="palette search: kqcodec's own (default), or scikit-learn's KMeans on "
                          "the same weighted colors, for comparison (slower)")
    enc.add_argument("--keep-profile", action="store_true",
                     help="quantize the raw values and embed the input's ICC profile in OUTPUT "
                          "(default: convert a picture with a non-sRGB profile to sRGB first)")
    _add_space(enc)
    # What a fixed k alone goes with.
    _add_dither(enc, "-k auto, --shared-palette")
    _add_reuse(enc, "-k auto, --shared-palette")
    _add_speed(enc)
    enc.add_argument("-v", "--verbose", action="store_true",
                     help="print colors, bit depth, size and PSNR (against the input as a "
                          "viewer shows it, in sRGB) of the result; with -k auto also the ks "
                          "tried, each with its PSNR and size (or estimated size)")
    _add_common(enc)
    enc.set_defaults(run=_encode)


def _decode_parser(commands):
    """The ``decode`` command's parser, with all its arguments."""
    dec = commands.add_parser(
        "decode", help=_HELP["decode"],
        description="Decode INPUT, a PNG from kqcodec or any other tool, and write its pixels "
                    "to OUTPUT in the format its extension names: .png, .jpg/.jpeg (quality "
                    "95), .webp (lossless), .bmp, .tif/.tiff.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dec.add_argument("input", type=file_name, metavar="INPUT", help="PNG file to decode")
    dec.add_argument("output", type=file_name, metavar="OUTPUT", help="picture to write")
    _add_common(dec)
    dec.set_defaults(run=_decode)


def _report_parser(commands):
    """The ``report`` command's parser, with all its arguments."""
    rep = commands.add_parser(
        "report", help=_HELP["report"],
        description="Encode every picture in FOLDER at every k (as `encode` would), write the "
                    "files to --out, decode them back and tabulate size, compression ratio, "
                    "PSNR and SSIM, with the smallest k reaching a target per picture: among "
                    "the listed ks, or, with --target-psnr, found by searching every k as "
                    "`encode -k auto` does.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rep.add_argument("folder", type=file_name, metavar="FOLDER",
                     help="folder of pictures (other files are skipped)")
    rep.add_argument("-k", dest="ks", type=k_list, default=REPORT_KS, metavar="LIST",
                     help="comma-separated palette sizes (default " + ",".join(map(str, REPORT_KS)) + ")")
    rep.add_argument("--out", type=file_name, default="compressed_outputs", metavar="DIR",
                     help="where the encodings go, as <stem>_k<k>.png (default %(default)s/)")
    rep.add_argument("--csv", metavar="PATH", help="also save the full table as CSV")
    rep.add_argument("--format", choices=REPORT_FORMATS, default="table",
                     help="what to print: the grouped table (default) or the full table as "
                          "markdown, CSV or JSON")
    rep.add_argument("--metrics", type=metric_list, default=REPORT_METRICS, metavar="LIST",
                     help="measures to compute, of " + ", ".join(METRICS) + " (default "
                          + ",".join(REPORT_METRICS) + "); ssimulacra2, a perceptual score, adds "
                          "a column and takes about as long as the encoding")
    target = rep.add_mutually_exclusive_group()
    target.add_argument("--target-psnr", type=psnr_value, default=None, metavar="DB",
                        help="search every k from 2 to --max-colors for the smallest whose "
                             "file reaches this PSNR, as `encode -k auto` does, write that file "
                             "too (<stem>_k<k>_psnr<DB>.png, a row with target_psnr) and "
                             "recommend it; without it the smallest listed k reaching "
                             f"{TARGET_PSNR:g} dB is recommended")
    target.add_argument("--target-ssimulacra2", type=score_value, default=None, metavar="SCORE",
                        help="recommend the smallest k reaching this SSIMULACRA2 score instead "
                             "(70: artefacts hard to notice), among the listed ks; adds "
                             "ssimulacra2 to --metrics")
    rep.add_argument("--max-colors", type=k_value, default=None, metavar="K",
                     help="the largest k the --target-psnr search considers (default 256)")
    rep.add_argument("--plot", metavar="PATH",
                     help="save a size-against-PSNR figure (.png, .pdf, .svg, .jpg, .tif or "
                          ".webp, by its name)")
    rep.add_argument("--compare", metavar="PATH",
                     help="save a sheet of the first 24 pictures, each beside a few of its "
                          "encodings (.png, .pdf, .svg, .jpg, .tif or .webp, by its name)")
    rep.add_argument("--html", metavar="PATH",
                     help="save an interactive page (.html) to compare each picture with its "
                          "encodings at full size; it links the encodings and pictures by "
                          "relative paths")
    rep.add_argument("--jobs", type=positive_int, default=None, metavar="N",
                     help="pictures encoded in parallel, or the workers of --scheduler local "
                          "(default: all cores)")
    rep.add_argument("--scheduler", type=scheduler_address, metavar="ADDRESS",
                     help="run one task per picture on a Dask cluster: tcp://HOST:PORT of a "
                          "running scheduler, or 'local' for a LocalCluster on this machine; "
                          "FOLDER and --out must be on storage every worker sees (needs "
                          "pip install 'kqcodec[dask]')")
    rep.add_argument("--resume", action="store_true",
                     help="continue a stopped run: keep the rows in --out's report.csv and do "
                          "only the (picture, k) pairs missing; refused if the run used other "
                          "options")
    rep.add_argument("--recursive", action="store_true", help="also read pictures in sub-folders")
    rep.add_argument("--seed", type=seed_value, default=0, metavar="N",
                     help="accepted as encode accepts it, without effect here: the report "
                          "encodes with kqcodec's own search, which does not use it")
    _add_space(rep)
    _add_dither(rep, "--target-psnr")
    _add_reuse(rep, "--target-psnr")
    rep.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_speed(rep)
    _add_common(rep)
    rep.set_defaults(run=_report)


# Each command's line in ``kqcodec --help``.
_HELP = {
    "encode": "quantize a picture to k colors and write a palette PNG",
    "decode": "decode a PNG (palette or not) to a picture file",
    "report": "size/quality table of a folder of pictures at several k",
}
_COMMANDS = {"encode": _encode_parser, "decode": _decode_parser, "report": _report_parser}


def scheduler_address(text):
    """Parse --scheduler: 'local' or PROTOCOL://HOST:PORT."""
    from .cluster import check_address

    try:
        return check_address(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(exc.spelled(as_flag)) from None


def k_list(text):
    """Parse a comma-separated list of palette sizes."""
    return tuple(sorted({k_value(part) for part in _items(text, "palette sizes")}))


def _check_encode_options(args):
    """Refuse option combinations that do not go together, before any work."""
    auto = args.k == "auto"
    targets = (args.target_psnr is not None) + (args.max_bytes is not None)
    if auto and targets != 1:
        raise UsageError("-k auto needs one target: --target-psnr DB or --max-bytes N")
    if not auto and (targets or args.max_colors is not None):
        raise UsageError("--target-psnr, --max-bytes and --max-colors go with -k auto")
    if auto and args.engine != "kqcodec":
        raise UsageError("-k auto searches with kqcodec's own engine")
    if args.out_dir is None:
        for flag, used in (("--recursive", args.recursive), ("--suffix", args.suffix),
                           ("--jobs", args.jobs), ("--shared-palette", args.shared_palette)):
            if used:
                raise UsageError(f"{flag} goes with --out-dir")
        if len(args.paths) != 2:
            raise UsageError("give INPUT and OUTPUT, or pictures and --out-dir DIR")
    else:
        if "-" in args.paths:
            raise UsageError("'-' (standard input) takes a single picture, without --out-dir")
        if args.shared_palette and auto:
            raise UsageError("--shared-palette takes a palette size, not -k auto")
        if "/" in args.suffix or "\\" in args.suffix:
            raise UsageError(f"--suffix {args.suffix!r}: no folder separators")


# Names of standard output as OUTPUT.
_STDOUT = ("-", "/dev/stdout", "/dev/fd/1")


def _encode(args):
    _check_encode_options(args)
    if args.out_dir is not None:
        return _encode_batch(args)
    from . import codec

    source, output = args.paths
    if output.endswith("/") and output not in _STDOUT:
        raise UsageError(f"{output}: names a folder; give the file to write, or --out-dir DIR")
    # /dev/stdout is a regular file when the shell redirects standard
    # output to one: it cannot take a temporary file and a rename.
    to_stdout = output in _STDOUT
    if to_stdout and sys.stdout is None:
        raise WriteError("standard output is closed")
    if to_stdout and sys.stdout.isatty():
        raise UsageError("standard output is a terminal: redirect it to a file or a pipe")
    if to_stdout and _same_file(sys.stdout, sys.stdin if source == "-" else source):
        # ``>> in.png`` or ``1<> in.png``: the PNG would be written into the input.
        name = "standard input's file" if source == "-" else f"the input file {source}"
        raise OutputExistsError(f"standard output is {name}; redirect it elsewhere")
    if source == "-":
        if sys.stdin is None:
            raise InputError("standard input is closed")
        if sys.stdin.isatty():
            # Nothing would come but what is typed, and the command would wait for it.
            raise UsageError("standard input is a terminal: redirect a picture into it")
        if not to_stdout and _same_file(sys.stdin, output):
            # ``< out.png`` with OUTPUT out.png: even with --force the
            # output would replace the input.
            raise OutputExistsError(f"standard input is the output file {output}; "
                                    "choose another name")
        from .imageio import read_stream

        source = read_stream(sys.stdin.buffer, "standard input", args.max_pixels)
    result = codec.encode(source, None if to_stdout else output, args.k, seed=args.seed,
                          force=args.force, max_pixels=args.max_pixels, engine=args.engine,
                          target_psnr=args.target_psnr, max_bytes=args.max_bytes,
                          max_colors=args.max_colors or 256,
                          skip_if_larger=args.skip_if_larger, keep_profile=args.keep_profile,
                          space=args.space, strict=args.strict, dither=args.dither,
                          speed=args.speed, reuse=args.reuse)
    if to_stdout:
        # The whole file is ready: nothing half-written reaches the pipe.
        _to_stdout(result.data)
    if args.verbose:
        name = "standard output" if to_stdout else output
        print(_describe(name, result, result.psnr), file=sys.stderr)
        if result.trials:
            print("kqcodec: ks tried: " + ", ".join(_trial(t) for t in result.trials),
                  file=sys.stderr)
    return 0


def _same_file(stream, other):
    """Whether `stream`'s descriptor is the file `other` (a path or a stream).

    False if either cannot be looked at, and for anything but regular
    files (a terminal or a pipe on both sides is no file to lose).
    """
    try:
        mine = os.fstat(stream.fileno())
        theirs = os.fstat(other.fileno()) if hasattr(other, "fileno") else os.stat(other)
    except (OSError, ValueError, AttributeError, TypeError):
        return False
    return stat.S_ISREG(mine.st_mode) and os.path.samestat(mine, theirs)


def _describe(name, result, psnr):
    from . import pngfile

    chosen = f"k={result.k}, " if result.trials else ""
    return (f"{_one_line(str(name))}: {chosen}{len(result.palette)} colors, "
            f"{pngfile.written_bit_depth(result.data)}-bit, {result.encoded_bytes} bytes, "
            f"PSNR {psnr:.2f} dB")


def _trial(trial):
    size = "" if trial.size is None else f" {trial.size} B"
    if trial.size is None and trial.estimate is not None:
        size = f" ~{trial.estimate:.0f} B estimated"
    speed = "" if trial.speed is None else f" at speed {trial.speed}"
    return f"{trial.k}{speed} ({trial.psnr:.2f} dB{size})"


def _encode_batch(args):
    from . import batch, workers

    outcomes = []
    try:
        with workers.stopping_once():
            _run_batch(args, batch, workers, outcomes)
    except KeyboardInterrupt:
        # The interruption's line says what was done and how to finish: the
        # same command finds the files it wrote and keeps them (see
        # batch._again).  A worker may have written a file whose outcome
        # was not said yet: the run again counts it too.
        raise KeyboardInterrupt(f"after {batch.summary_line(outcomes)}; the same command "
                                "again finishes the batch, keeping the files written") from None
    print(f"kqcodec: {batch.summary_line(outcomes)}", file=sys.stderr)
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def _run_batch(args, batch, workers, outcomes):
    """Append the outcomes of a batch to `outcomes`, each said as it comes."""
    # Closed here, inside the caller's stopping_once: a Ctrl-C stops the
    # workers before the signals are handled as usual again.
    run = contextlib.closing(batch.encode_batch(
        args.paths, args.out_dir, args.k, recursive=args.recursive, suffix=args.suffix,
        jobs=args.jobs, progress=not args.quiet and sys.stderr.isatty(),
        shared=args.shared_palette, force=args.force, skip_if_larger=args.skip_if_larger,
        max_pixels=args.max_pixels, seed=args.seed, engine=args.engine,
        target_psnr=args.target_psnr, max_bytes=args.max_bytes,
        max_colors=args.max_colors or 256, keep_profile=args.keep_profile,
        space=args.space, strict=args.strict, dither=args.dither, speed=args.speed,
        reuse=args.reuse))
    with run as outcomes_to_come:
        for outcome in outcomes_to_come:
            _say(args, workers, outcome)
            outcomes.append(outcome)


def _say(args, workers, outcome):
    """One outcome of a batch on stderr: failures and skips always, the rest with -v."""
    if outcome.status == "failed":
        workers.say(f"kqcodec: error: {_one_line(outcome.said(as_flag))}")
    elif outcome.status == "skipped":
        workers.say(f"kqcodec: skipped: {_one_line(outcome.said(as_flag))}")
    elif args.verbose:
        line = (f"{outcome.dest}: k={outcome.k}, {outcome.encoded_bytes} bytes, "
                f"PSNR {outcome.psnr:.2f} dB")
        if outcome.trials:
            line += "; ks tried: " + ", ".join(_trial(t) for t in outcome.trials)
        workers.say(_one_line(line))


def _decode(args):
    from . import codec

    for path in (args.input, args.output):
        if path in _STDOUT or path in ("/dev/stdin", "/dev/fd/0"):
            raise UsageError(f"{path}: decode takes files, not standard input or output "
                             "(the output's extension names its format)")

    codec.decode(args.input, args.output, force=args.force, max_pixels=args.max_pixels,
                 strict=args.strict)
    return 0


def _report(args):
    # Not the table yet: pandas is imported once the workers have started.
    from . import reporting, scan

    if args.max_colors is not None and args.target_psnr is None:
        raise UsageError("--max-colors bounds the search of --target-psnr")
    if args.csv in _STDOUT:
        raise UsageError(f"--csv {args.csv}: --csv takes a file name; --format csv prints the "
                         "table on standard output")
    metrics = set(args.metrics) | {"psnr"}  # the plot and the default recommendation use it
    if args.target_ssimulacra2 is not None:
        metrics.add("ssimulacra2")
    images = scan.find_images(args.folder, recursive=args.recursive, exclude=args.out)
    scan.check_extra_outputs(images, csv=args.csv, plot=args.plot, compare=args.compare,
                             html=args.html, force=args.force, folder=args.folder, out=args.out)
    table = reporting.report(
        args.folder, args.ks, out=args.out, recursive=args.recursive, force=args.force,
        seed=args.seed, jobs=args.jobs, max_pixels=args.max_pixels, space=args.space,
        strict=args.strict, dither=args.dither, speed=args.speed, reuse=args.reuse,
        metrics=metrics, progress=not args.quiet and sys.stderr.isatty(),
        scheduler=args.scheduler, resume=args.resume,
        announce=None if args.quiet else _tell,
        target_psnr=args.target_psnr, max_colors=args.max_colors or 256, flags=True,
    )
    from . import journal, table as tables, textreport

    if args.target_psnr is None:
        args.target_psnr = TARGET_PSNR
    # The table first: whatever happens to the extras, the work is not lost.
    text = textreport.render(table, args.format, args.target_psnr,
                             target_ssimulacra2=args.target_ssimulacra2)
    try:
        _to_stdout(text, saved=os.path.join(args.out, journal.FILENAME))
        unprinted = None
    except WriteError as exc:
        unprinted = exc  # said once the extras are written too
    if args.csv:
        tables.save_csv(table, args.csv, force=args.force)
    if args.plot or args.compare:
        from . import figures

        if args.plot and not figures.plot_rate_distortion(table, args.plot, force=args.force):
            _tell(f"warning: {args.plot}: no encoding with a finite PSNR (failed, or exact), "
                  "no figure written")
        if args.compare:
            if not figures.compare_sheet(table, args.folder, args.compare, out=args.out,
                                         target_psnr=args.target_psnr,
                                         target_ssimulacra2=args.target_ssimulacra2,
                                         force=args.force):
                _tell(f"warning: {args.compare}: no picture was encoded, no sheet written")
    if args.html:
        from . import htmlpage

        htmlpage.write_page(table, args.html, folder=args.folder, out=args.out,
                            target_psnr=args.target_psnr,
                            target_ssimulacra2=args.target_ssimulacra2, force=args.force)
    if unprinted is not None:
        raise unprinted
    failed = table[table["status"] != "ok"]
    kept = failed[failed["status"] == "kept"]
    if len(kept):
        print(f"kqcodec: kept {len(kept)} existing encodings that differ "
              f"(use --force to replace them)", file=sys.stderr)
    return 1 if len(failed) else 0


def _to_stdout(data, saved=None):
    """Write `data` (bytes, or text) to standard output and flush it.

    Text goes through the stream's own encoding (characters it cannot
    encode as backslash escapes), or as text to a stream without bytes (a
    caller's ``contextlib.redirect_stdout(io.StringIO())``).

    Raises
    ------
    WriteError
        If it fails: a full disk, or a reader that closed the pipe.  Standard
        output is then pointed at the null device, so that the exit's own
        flush does not fail again with a traceback.  `saved` is named in the
        message as where the output still is.
    """
    where = f" ({saved} holds it)" if saved is not None else ""
    if sys.stdout is None:
        raise WriteError(f"standard output is closed{where}")
    try:
        sys.stdout.flush()
        binary = getattr(sys.stdout, "buffer", None)
        if isinstance(data, str) and binary is None:
            sys.stdout.write(data)
        else:
            if isinstance(data, str):
                data = data.encode(sys.stdout.encoding or "utf-8", "backslashreplace")
            # Unbuffered (python -u, PYTHONUNBUFFERED), the stream is the
            # raw file, whose write may take only part of the data (a pipe
            # takes 64 KB at a time): the rest is written until it fails.
            rest = memoryview(data)
            while rest:
                written = binary.write(rest)
                if written is None:  # a non-blocking descriptor that is full
                    raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))
                rest = rest[written:]
            binary.flush()
    except OSError as exc:
        with contextlib.suppress(OSError, ValueError):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, sys.stdout.fileno())
            os.close(null)
        reason = "the reader closed the pipe" if isinstance(exc, BrokenPipeError) else exc.strerror
        raise WriteError(f"standard output: write failed: {reason}{where}") from None


# Control characters (a file name may hold a newline) as escapes: a message is one line.
_CONTROLS = {code: f"\\x{code:02x}" for code in [*range(32), 127]}


def _one_line(message):
    return message.translate(_CONTROLS)


def _tell(message):
    print(f"kqcodec: {_one_line(message)}", file=sys.stderr)


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    from .workers import say  # above a progress bar, if one is shown

    say(f"kqcodec: warning: {_one_line(str(message))}")


def main(argv=None, *, own_process=False):
    """Run the command line; return the exit code.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; ``sys.argv[1:]`` by default.
    own_process : bool
        The process is the command's own (:func:`run`): its malloc may keep
        the memory it frees (see :func:`heap.keep_freed_memory`), which a
        program calling this function keeps as it set it.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    # The command is the first word that is not an option (--version, say).
    named = next((word for word in argv if not word.startswith("-")), None)
    args = build_parser(named if named in _COMMANDS else None).parse_args(argv)
    _one_blas_thread()
    if own_process:
        keep_freed_memory()
    saved = warnings.showwarning
    warnings.showwarning = _one_line_warning
    # A plain kill must clean up like Ctrl-C: SystemExit unwinds the writes.
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _exit_on_term) if in_main else None
    try:
        with _interrupt_held(in_main):
            # A Ctrl-C while numpy's core loads becomes an ImportError that
            # blames the installation (numpy cannot import datetime): 55
            # lines and exit 1.  Held, it is said as any other, after.
            import numpy  # noqa: F401
        return args.run(args)
    except KqcodecError as exc:
        print(f"kqcodec: error: {_one_line(exc.spelled(as_flag))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        if in_main:
            # The command is ending: a Ctrl-C pressed again (or `timeout -s
            # INT` reaching the process group) ends it by the signal,
            # silently, rather than as a traceback from wherever it lands.
            signal.signal(signal.SIGINT, signal.SIG_DFL)
        print(_one_line(" ".join(["kqcodec: interrupted", *map(str, exc.args)])), file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = saved
        if in_main:
            signal.signal(signal.SIGTERM, previous)


def run():
    """The ``kqcodec`` command and ``python -m kqcodec``: :func:`main`, then exit with its code.

    A finished command leaves without the interpreter's teardown, which
    frees every module and array one by one (numpy's among them): 10 to
    20 ms of CPU time, about 5% of a whole 0.25 MP encode, and about 0.1 s
    of a report, whose parent holds pandas, SciPy and scikit-image, for
    nothing the command needs.  The exit handlers still run first, as at
    any exit (multiprocessing's, which reap the report's workers, and
    those of objects with finalizers), and the output is flushed; only from
    the main thread, and when no other thread but daemons (tqdm's monitor)
    runs, which no exit waits for: otherwise it exits as usual.
    """
    if sys.stderr is None:
        # Started with ``2>&-``: print() would send the messages to standard
        # output instead, after a PNG written there.
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the process's, to its end
    code = main(own_process=True)
    # A stream closed when the process started (``>&-``) is None.
    streams = [stream for stream in (sys.stdout, sys.stderr) if stream is not None]
    try:
        for stream in streams:
            stream.flush()
    except (OSError, ValueError):
        # A closed pipe, say: the usual exit reports it as before.
        sys.exit(code)
    main_thread = threading.main_thread()
    if threading.current_thread() is main_thread and all(
            thread.daemon for thread in threading.enumerate() if thread is not main_thread):
        atexit._run_exitfuncs()
        with contextlib.suppress(OSError, ValueError):
            for stream in streams:
                stream.flush()
        os._exit(code)
    sys.exit(code)


def _one_blas_thread():
    """Have OpenBLAS (numpy's and SciPy's) start one thread, unless the user chose a number.

    kqcodec's matrix products are thin, (M, 3) by (3, k) at most, and the
    palette search already runs them on one thread.  The other threads are
    still started when numpy and SciPy load, and spin while they wait: on
    two cores a 0.24 MP encode took about 0.1 s more CPU time with them,
    for the same bytes.  OpenBLAS reads the variable when it loads, so it
    is set only if numpy is not loaded yet; worker processes inherit it.
    """
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


@contextlib.contextmanager
def _interrupt_held(in_main):
    """Hold a Ctrl-C (SIGINT) that comes during the block; deliver it when the block ends.

    Only in the main thread, where Python handles signals, and only while
    SIGINT has a handler (not when it is ignored, as in a background job).
    """
    previous = signal.getsignal(signal.SIGINT) if in_main else signal.SIG_IGN
    if previous in (signal.SIG_IGN, None):
        yield
        return
    pressed = []
    signal.signal(signal.SIGINT, lambda signum, frame: pressed.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if pressed:
            signal.raise_signal(signal.SIGINT)


def _exit_on_term(signum, frame):
    raise SystemExit(128 + signum)

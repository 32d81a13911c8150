"""Error handling around a training run (:func:`discnet.training.run.run_training`).

A single run with bad input prints one line and exits with code 2. In a sweep (``-m``), a failing run
is recorded as failed in its own ``summary.json`` and the sweep goes on with the other runs. Command-line
overrides are checked first (:func:`check_overrides`), so an unknown or malformed one is one line too.
"""

from __future__ import annotations

import contextlib
import logging
import shlex
import shutil
import sys
import traceback
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from discnet.errors import InputError
from discnet.models.run_folder import CONFIG, SUMMARY, write_json
from discnet.training.run import run_training

log = logging.getLogger("discnet.train")
#: The Hydra configs, inside the package (``discnet/conf``: in a checkout a link to ``conf/``).
#: What a failed launch leaves in its run folder before training starts (removed with the folder).
_LAUNCH_FILES = (".hydra", CONFIG)


def program() -> str:
    """How the user started training: ``train.py`` or ``discnet train`` (for messages)."""
    return "train.py" if Path(sys.argv[0]).name == "train.py" else "discnet train"


def resume_command(out: Path) -> str:
    """The command line that resumes the run in ``out`` (its ``last.ckpt``): the same overrides, that folder."""
    words = [w for w in sys.argv[1:] if not w.startswith("hydra.run.dir=")]
    prog = f"python {sys.argv[0]}" if program() == "train.py" else "discnet train"
    return " ".join([prog, *map(shlex.quote, [*words, f"hydra.run.dir={out}"])])


def _launch_leftovers(out: Path) -> list[Path] | None:
    """The files of a launch in ``out`` when that is all the folder holds (else None: keep the folder)."""
    if not out.is_dir():
        return None
    entries = list(out.iterdir())
    ours = [e for e in entries if e.name in _LAUNCH_FILES or e.suffix == ".log"]
    return ours if len(ours) == len(entries) else None


def _remove_failed_launch(out: Path, leftovers: list[Path]) -> None:
    """Remove the run folder a failed launch created (Hydra's ``.hydra``, the job log, ``config.yaml``)."""
    for entry in leftovers:
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        out.rmdir()


def _multirun() -> bool:
    try:
        return HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:
        return False


def _plain(cfg: DictConfig, key: str):
    try:
        value = OmegaConf.select(cfg, key)
    except (OmegaConfBaseException, ValueError):
        return None
    return value if isinstance(value, int | float | str) or value is None else str(value)


def _record(cfg: DictConfig, status: str, error: str) -> Path:
    """Write a ``summary.json`` of a run that did not complete (when the disk lets us); its path."""
    out = Path(cfg.paths.output_dir) / SUMMARY
    summary = {"status": status, "version": _plain(cfg, "version"), "seed": _plain(cfg, "seed"), "error": error}
    try:
        write_json(summary, out)
    except InputError as err:
        log.error("could not record the run's status: %s", err)
    return out


def guarded_run(cfg: DictConfig) -> float | None:
    """Run; return the best ``val/dsc`` (the value Hydra sweepers optimise).

    Ctrl+C (SIGINT) records ``"status": "interrupted"``, prints the command that resumes and exits with
    code 130 (a sweep stops too). A single run refused for bad input before anything was trained removes
    the run folder its launch created (no empty timestamped folders); a sweep records it as failed.
    """
    out = Path(cfg.paths.output_dir)
    leftovers = _launch_leftovers(out)
    try:
        return run_training(cfg)["best_val_dsc"]
    except KeyboardInterrupt:
        recorded = _record(cfg, "interrupted", "KeyboardInterrupt: interrupted by the user (SIGINT)")
        again = "run the same command again" if _multirun() else resume_command(out)
        print(f"{program()}: interrupted; recorded in {recorded}; to resume: {again}", file=sys.stderr)
        sys.exit(130)
    except Exception as err:
        if _multirun():
            _record(cfg, "failed", f"{type(err).__name__}: {err}")
            log.error("run failed (recorded in %s): %s\n%s", out / SUMMARY, err, traceback.format_exc())
            return None
        launch_only = _launch_leftovers(out) if isinstance(err, InputError) and leftovers is not None else None
        if launch_only is not None:
            _remove_failed_launch(out, launch_only)
        else:
            _record(cfg, "failed", f"{type(err).__name__}: {err}")
        if isinstance(err, InputError):
            print(f"{program()}: error: {err}", file=sys.stderr)
            sys.exit(2)
        raise


def _one_line(err: BaseException) -> str:
    cause = f" ({str(err.__cause__).splitlines()[0]})" if str(err.__cause__ or "").strip() else ""
    text = " ".join(f"{err}{cause}".split())
    return text.split(" Config search path:")[0]


def override_error(argv: list[str], config_dir: str | Path, config_name: str) -> InputError | None:
    """The first unknown or malformed override in ``argv`` as an :class:`InputError`, or None.

    Each override is parsed and the config composed with them (a sweep by its first value, ``glob``
    sweeps unchecked). Command lines with other options than ``-m`` are left to Hydra.

    Example:
        >>> str(override_error(["nosuchkey=1"], "conf", "train")).split(":")[0]
        'nosuchkey=1'
    """
    if any(a.startswith("-") and a not in ("-m", "--multirun") for a in argv):
        return None
    texts = [a for a in argv if not a.startswith("-")]
    multirun = len(texts) < len(argv)
    fix = f"see {program()} --help for the options (a new key needs a leading +)"
    try:
        overrides = OverridesParser.create().parse_overrides(texts)
    except HydraException as err:
        bad = next((t for t in texts if _parses(t) is False), " ".join(texts))
        return InputError(bad, f"malformed override ({_one_line(err)})", fix)
    checked = []
    for override in overrides:
        if override.is_sweep_override():
            if not multirun:
                return InputError(
                    override.input_line, "is a sweep but -m is not given", "add -m to sweep, or give one value"
                )
            if "GLOB" in override.value_type.name:
                continue
            first = next(iter(override.sweep_string_iterator()))
            checked.append((override, f"{override.get_key_element()}={first}"))
        else:
            checked.append((override, override.input_line))
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(Path(config_dir).resolve()), version_base="1.3"):
            err = _composes(config_name, [text for _, text in checked])
    finally:
        GlobalHydra.instance().clear()
    if err is None:
        return None
    message = _one_line(err)
    named = [o.input_line for o, _ in checked if f"'{o.key_or_group}" in message]
    return InputError(named[0] if named else " ".join(texts), f"unknown or invalid override ({message})", fix)


def _composes(config_name: str, overrides: list[str]) -> Exception | None:
    try:
        compose(config_name, overrides=overrides)
    except (HydraException, OmegaConfBaseException) as err:
        return err
    return None


def _parses(text: str) -> bool:
    try:
        OverridesParser.create().parse_overrides([text])
    except HydraException:
        return False
    return True


def check_overrides(argv: list[str], config_dir: str | Path, config_name: str) -> None:
    """Exit with one line and code 2 when an override in ``argv`` is unknown or malformed."""
    err = override_error(argv, config_dir, config_name)
    if err is not None:
        print(f"{program()}: error: {err}", file=sys.stderr)
        sys.exit(2)

"""The subject manifest ``subjects.csv``: load and validate, save, and a one-row-per-disc view.

Columns: ``subject``, ``image``, ``label`` (optional when only predicting), ``session`` (optional int,
1 = first acquisition, default 1), ``age``, ``sex``, ``split`` (train/val/test) and Pfirrmann grades
``grade_<LEVEL>`` (``I``-``V`` or ``1``-``5``, empty = unknown). Paths are relative to the CSV's folder
(absolute paths are allowed). Any other column is kept as text.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "subjects.csv").write_text("subject,image,grade_L4-L5\\ns01,scans/s01.nii.gz,IV\\n")
    >>> df = load_manifest(d / "subjects.csv", require_labels=False, check_files=False)
    >>> df.loc[0, "image"] == str(d / "scans" / "s01.nii.gz"), int(df.loc[0, "session"]), int(df.loc[0, "grade_L4-L5"])
    (True, 1, 4)

Over 300 lines because it is one file format and every check of it (a bad manifest is one line
naming the row and cell), with the per-disc table derived from it.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from discnet.errors import InputError
from discnet.io.atomic import atomic_path
from discnet.io.files import read_geometry
from discnet.io.volume import GEOMETRY_ATOL_MM
from discnet.spine import GRADES, LEVELS, UNKNOWN_TEXTS, grade_number

KNOWN = ("subject", "image", "label", "session", "age", "sex", "split")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class ManifestStyle:
    """How a loaded ``subjects.csv`` was written, so that :func:`save_manifest` writes it back alike.

    Attributes:
        columns: its columns, in order.
        defaulted: the columns load_manifest added (``session``, ``label``), dropped again on saving.
        roman: grades written as roman numerals (I-V) rather than 1-5.
        absolute: image and label paths that were absolute in it (kept absolute).
    """

    columns: tuple[str, ...] = ()
    defaulted: tuple[str, ...] = ()
    roman: bool = False
    absolute: frozenset[str] = frozenset()


_SPLIT_ALIASES = {"training": "train", "validation": "val", "valid": "val", "testing": "test"}
_SAFE_NAME = re.compile(r"^\w[\w.+-]*$")


def grade_columns(df: pd.DataFrame) -> list[str]:
    """The ``grade_<LEVEL>`` columns of ``df``, superior to inferior.

    Example:
        >>> grade_columns(pd.DataFrame(columns=["subject", "grade_L5-S1", "grade_L1-L2"]))
        ['grade_L1-L2', 'grade_L5-S1']
    """
    return [f"grade_{level}" for level in LEVELS if f"grade_{level}" in df.columns]


def _row(i: int, subject: object) -> str:
    return f"row {i + 1} (subject '{subject}')"


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(path, "manifest not found", "give the path of subjects.csv")
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            rows = [[cell.strip() for cell in row] for row in csv.reader(file) if any(c.strip() for c in row)]
    except (csv.Error, UnicodeDecodeError) as err:
        raise InputError(path, f"cannot be read as CSV ({err})", "save it as comma-separated UTF-8") from err
    if not rows:
        raise InputError(path, "manifest is empty", "write a header line: subject,image,label")
    header, body = rows[0], rows[1:]
    for i, row in enumerate(body):
        if len(row) > len(header):
            raise InputError(path, f"row {i + 1} has {len(row)} fields but the header {len(header)}", "fix the commas")
    body = [row + [""] * (len(header) - len(row)) for row in body]
    return pd.DataFrame(body, columns=header, dtype=object)


def _column_name(name: str, path: Path) -> str:
    name = name.strip()
    if name.lower() in KNOWN:
        return name.lower()
    if not name.lower().startswith("grade_"):
        return name
    key = re.sub(r"[\s_/]+", "-", name[len("grade_") :].upper())
    for level in LEVELS:
        if key == level.upper():
            return f"grade_{level}"
    raise InputError(
        path, f"column '{name}' names an unknown level", f"use grade_<LEVEL> with LEVEL in {', '.join(LEVELS)}"
    )


def _parse_grade(text: str) -> int | None:
    """The grade 1-5, None when unknown, -1 when ``text`` is not a grade (the caller names the cell)."""
    try:
        return grade_number(text)
    except ValueError:
        return -1


def _subject(name: str, where: str, path: Path) -> str:
    if not name:
        raise InputError(path, f"{where}: empty subject name", "give every row a subject name")
    if ".." in name or not _SAFE_NAME.match(name):
        raise InputError(
            path,
            f"{where}: subject name is not safe as a file name",
            "use letters, digits, '_', '-', '+' and single dots only (no path separators or '..')",
        )
    return name


def _session(text: str, where: str, path: Path) -> int:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value.is_integer() and value >= 1):
        raise InputError(path, f"{where}: session '{text}' is not a positive integer", "number sessions 1, 2, ...")
    return int(value)


def _age(text: str, where: str, path: Path) -> float:
    if text.upper() in UNKNOWN_TEXTS:
        return float("nan")
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (np.isfinite(value) and value >= 0):
        raise InputError(
            path, f"{where}: age '{text}' is not a number of years", "give the age in years or leave it empty"
        )
    return value


def _split(text: str, where: str, path: Path) -> str | None:
    value = _SPLIT_ALIASES.get(text.lower(), text.lower())
    if not value:
        return None
    if value not in SPLITS:
        raise InputError(path, f"{where}: split '{text}' is not one of {', '.join(SPLITS)}", "fix it or leave it empty")
    return value


def _resolve(text: str, column: str, where: str, base: Path, path: Path, required: bool) -> str | None:
    if not text:
        if required:
            raise InputError(path, f"{where}: empty {column} path", f"give the {column} file of every row")
        return None
    return os.path.abspath(base / Path(text).expanduser())


def _check_geometry(image: str, label: str, where: str, path: Path) -> None:
    try:
        (image_shape, image_affine), (label_shape, label_affine) = read_geometry(image), read_geometry(label)
    except InputError as err:
        raise InputError(path, f"{where}: {err.where}: {err.problem}", err.fix) from err
    if tuple(image_shape) != tuple(label_shape):
        raise InputError(
            path,
            f"{where}: image and label differ in shape: {tuple(image_shape)} vs {tuple(label_shape)}",
            "give the label map drawn on this image",
        )
    if not np.allclose(image_affine, label_affine, rtol=0, atol=GEOMETRY_ATOL_MM):
        raise InputError(
            path,
            f"{where}: image and label have the same shape {tuple(image_shape)}, different geometry "
            "(spacing/origin/direction)",
            "resample or re-export the label map in the image's geometry",
        )


def _check_rows(df: pd.DataFrame, path: Path) -> None:
    dupes = df[df.duplicated(["subject", "session"], keep=False)]
    if not dupes.empty:
        first = dupes.iloc[0]
        rows = ", ".join(str(i + 1) for i in dupes.index[dupes["subject"] == first["subject"]])
        raise InputError(
            path,
            f"subject '{first['subject']}' session {first['session']} appears more than once (rows {rows})",
            "give each subject+session one row (add a session column for repeated scans)",
        )
    if "split" in df.columns:
        splits = df.dropna(subset=["split"]).groupby("subject")["split"].unique()
        mixed = splits[splits.map(len) > 1]
        if not mixed.empty:
            raise InputError(
                path,
                f"subject '{mixed.index[0]}' has sessions in different splits ({', '.join(sorted(mixed.iloc[0]))})",
                "give all sessions of a subject the same split",
            )


def load_manifest_and_style(
    path: str | Path, require_labels: bool = True, check_files: bool = True, check_geometry: bool = False
) -> tuple[pd.DataFrame, ManifestStyle]:
    """Read and validate ``subjects.csv``; raise :class:`InputError` naming the CSV and row on bad input.

    Returns the table and how the file was written (:class:`ManifestStyle`, for :func:`save_manifest`).
    The table has ``image``/``label`` as absolute path strings (``label`` NaN when absent),
    ``session`` int (1 when the column is absent), ``age`` float (NaN = unknown), ``split`` lower-case
    text or NaN, and each ``grade_<LEVEL>`` as nullable ``Int64`` 1-5. Rows are numbered from 1 after the
    header in messages.

    Args:
        path: the CSV file.
        require_labels: a ``label`` path is required on every row (training, evaluation).
        check_files: every given image/label must exist.
        check_geometry: image and label headers must agree in shape and affine (to 1e-4 mm).
    """
    path = Path(path)
    raw = _read_csv(path)
    names = [_column_name(c, path) for c in raw.columns]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(path, f"column(s) {', '.join(repeated)} appear more than once", "keep one of each")
    raw.columns = names
    required = ["subject", "image"] + (["label"] if require_labels else [])
    missing = [c for c in required if c not in raw.columns]
    if missing:
        raise InputError(path, f"missing required column(s): {', '.join(missing)}", f"add {', '.join(missing)}")
    if raw.empty:
        raise InputError(path, "has no subject rows", "add one row per scan")
    base = Path(os.path.abspath(path.parent))
    where = [_row(i, s) for i, s in enumerate(raw["subject"])]
    df = raw.copy()
    df["subject"] = [_subject(s, w, path) for s, w in zip(raw["subject"], where, strict=True)]
    for column, need in (("image", True), ("label", require_labels)):
        if column in raw.columns:
            df[column] = [_resolve(t, column, w, base, path, need) for t, w in zip(raw[column], where, strict=True)]
    defaulted = [c for c in ("label", "session") if c not in raw.columns]
    if "label" in defaulted:
        df["label"] = pd.Series([None] * len(df), dtype=object)
    sessions = raw["session"] if "session" in raw.columns else ["1"] * len(raw)
    df["session"] = np.array([_session(t, w, path) for t, w in zip(sessions, where, strict=True)], dtype=np.int64)
    if "age" in raw.columns:
        df["age"] = np.array([_age(t, w, path) for t, w in zip(raw["age"], where, strict=True)], dtype=float)
    if "split" in raw.columns:
        df["split"] = pd.Series([_split(t, w, path) for t, w in zip(raw["split"], where, strict=True)], dtype=object)
    for column in grade_columns(raw):
        values = [_parse_grade(t) for t in raw[column]]
        for value, text, w in zip(values, raw[column], where, strict=True):
            if value == -1:
                raise InputError(
                    path, f"{w}: {column} '{text}' is not a Pfirrmann grade", "use I-V or 1-5, or leave it empty"
                )
        df[column] = pd.array(values, dtype="Int64")
    _check_rows(df, path)
    for i, row in df.iterrows():
        for column in ("image", "label"):
            if check_files and isinstance(row[column], str) and not os.path.exists(row[column]):
                raise InputError(
                    path,
                    f"{where[i]}: {column} file not found: {row[column]}",
                    "fix the path (relative to the CSV's folder)",
                )
        if check_geometry and isinstance(row["label"], str):
            _check_geometry(row["image"], row["label"], where[i], path)
    texts = [t.upper() for c in grade_columns(raw) for t in raw[c] if t.upper() not in UNKNOWN_TEXTS]
    absolute = {os.path.abspath(t) for c in ("image", "label") if c in raw.columns for t in raw[c] if os.path.isabs(t)}
    style = ManifestStyle(
        columns=tuple(raw.columns),
        defaulted=tuple(defaulted),
        roman=sum(t in GRADES for t in texts) * 2 > len(texts),
        absolute=frozenset(absolute),
    )
    return df, style


def load_manifest(
    path: str | Path, require_labels: bool = True, check_files: bool = True, check_geometry: bool = False
) -> pd.DataFrame:
    """The table of :func:`load_manifest_and_style` (what reading a manifest needs; saving needs its style)."""
    return load_manifest_and_style(path, require_labels, check_files, check_geometry)[0]


def _relative(value: object, base: str, absolute: set[str]) -> str:
    if not isinstance(value, str | os.PathLike) or not str(value):
        return ""
    full = os.path.abspath(value)
    if full in absolute:
        return full
    try:
        return Path(os.path.relpath(full, base)).as_posix()
    except ValueError:  # another drive on Windows
        return full


def save_manifest(df: pd.DataFrame, path: str | Path, style: ManifestStyle | None = None) -> Path:
    """Write ``df`` as ``subjects.csv`` at ``path`` atomically, paths relative to its folder.

    With the ``style`` of the loaded file (:func:`load_manifest_and_style`): keeps its column order (new
    columns go last), its grade style (roman or numeric) and the paths that were absolute in it, and
    drops the ``session``/``label`` columns load_manifest only defaulted.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(path, "is a folder", "give a CSV file name, e.g. subjects.csv")
    style = style or ManifestStyle()
    out = df.copy()
    base, absolute = os.path.abspath(path.parent), set(style.absolute)
    for column in ("image", "label"):
        if column in out.columns:
            out[column] = [_relative(v, base, absolute) for v in out[column]]
    for column in grade_columns(out):
        names = GRADES if style.roman else tuple("12345")
        out[column] = ["" if pd.isna(v) else names[int(v) - 1] for v in out[column]]
    if "age" in out.columns and pd.api.types.is_float_dtype(out["age"]):
        ages = out["age"].dropna()
        if (ages == ages.round()).all():
            out["age"] = out["age"].astype("Int64")
    defaulted = style.defaulted
    if "session" in defaulted and (out["session"] == 1).all():
        out = out.drop(columns="session")
    if "label" in defaulted and (out["label"] == "").all():
        out = out.drop(columns="label")
    order = [c for c in style.columns if c in out.columns]
    out = out[order + [c for c in out.columns if c not in order]]
    with atomic_path(path) as tmp:
        out.to_csv(tmp, index=False)
    return path


def discs_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per subject and level of the subject's first session: subject, session, level, grade, age.

    A grade left empty on the first session is taken from a later session of the same subject. ``sex``
    and ``split`` come along when ``df`` has them. Subjects keep their manifest order, levels go
    superior to inferior.

    Example:
        >>> df = pd.DataFrame({"subject": ["a"], "session": [1], "age": [70.0], "grade_L5-S1": [5]})
        >>> discs_table(df)[["level", "grade"]].tail(1).values.tolist()
        [['L5-S1', 5]]
    """
    columns = grade_columns(df)
    extra = [c for c in ("sex", "split") if c in df.columns]
    table = df.copy()
    if "session" not in table.columns:
        table["session"] = 1
    if "age" not in table.columns:
        table["age"] = np.nan
    table = table.sort_values("session", kind="stable")
    first = table.groupby("subject", sort=False)[["session", "age", *extra, *columns]].first()
    first = first.reindex(pd.unique(df["subject"]))
    n = len(first)
    grades = np.full((n, len(LEVELS)), np.nan)
    for j, level in enumerate(LEVELS):
        if f"grade_{level}" in columns:
            grades[:, j] = pd.to_numeric(first[f"grade_{level}"]).astype(float).to_numpy()
    long = pd.DataFrame(
        {
            "subject": np.repeat(first.index.to_numpy(), len(LEVELS)),
            "session": np.repeat(first["session"].to_numpy(dtype=np.int64), len(LEVELS)),
            "level": np.tile(LEVELS, n),
            "grade": pd.array(pd.Series(grades.ravel()).round(), dtype="Int64"),
            "age": np.repeat(first["age"].to_numpy(dtype=float), len(LEVELS)),
        }
    )
    for column in extra:
        long[column] = np.repeat(first[column].to_numpy(), len(LEVELS))
    return long

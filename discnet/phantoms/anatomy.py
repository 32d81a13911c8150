"""Anatomy of a synthetic lumbar spine: subject traits, session posture and sagittal geometry.

Geometry lives in an image plane in millimetres: ``r`` runs superior -> inferior (array axis 0), ``q``
anterior -> posterior (array axis 1); ``x`` is the left -> right slice axis. A direction angle ``theta``
gives the axis ``(cos, sin)`` in ``(r, q)``; positive angles lean posteriorly going down (lordosis).

Example:
    >>> rng = np.random.default_rng(0)
    >>> subject = sample_subject(rng, age=30.0)
    >>> spine = build_spine(subject, sample_posture(rng, first=True), fov=(266.0, 183.0))
    >>> [d.name for d in spine.discs if d.level][:2]
    ['L1-L2', 'L2-L3']
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import CubicSpline

from discnet.spine import LEVELS

VERTS = ("T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1", "S2", "S3", "S4")
SACRAL = frozenset({"S1", "S2", "S3", "S4"})
# Nominal adult sizes (mm): body height (SI), depth (AP), width (LR) per vertebra.
BODY_H = np.array([22, 23, 25, 26, 27, 27, 26, 26, 20, 16, 12], float)
BODY_D = np.array([28, 30, 32, 33, 34, 35, 35, 32, 26, 20, 14], float)
BODY_W = np.array([36, 38, 42, 44, 46, 47, 48, 62, 50, 38, 26], float)
# Per disc between consecutive vertebrae: healthy centre height (mm), width (mm), lordotic wedge (deg).
DISC_H = np.array([6.0, 7.0, 8.5, 9.5, 10.5, 11.5, 10.5, 2.0, 1.5, 1.2])
DISC_W = np.array([36.0, 39.0, 42.0, 44.0, 45.0, 46.0, 46.0, 30.0, 24.0, 18.0])
WEDGE = np.array([-2.0, 1.0, 4.0, 6.0, 8.0, 11.0, 16.0, -8.0, -12.0, -15.0])
# Degeneration by Pfirrmann grade I..V: height factor, irregularity (mm), posterior bulge (mm).
GRADE_HEIGHT = np.array([1.0, 0.97, 0.85, 0.65, 0.35])
GRADE_ROUGH = np.array([0.0, 0.15, 0.35, 0.7, 1.2])
GRADE_BULGE = np.array([0.0, 0.5, 1.5, 2.5, 3.0])
LEVEL_RISK = np.array([-0.55, -0.35, -0.05, 0.45, 0.5])


@dataclass(frozen=True)
class Subject:
    """Traits fixed for a subject across sessions (sizes in mm, grades 1..5 per ``LEVELS``)."""

    age: float
    sex: str
    grades: tuple[int, ...]
    n_slices: int
    scale: float
    lordosis: float
    tilt_deg: float
    top_mm: float
    front_frac: float
    canal_ap: float
    fat_mm: float
    height_jitter: np.ndarray


@dataclass(frozen=True)
class Posture:
    """Small per-session changes: rotation (deg), shifts (mm), lordosis and disc height factors."""

    rot_deg: float = 0.0
    shift_r: float = 0.0
    shift_q: float = 0.0
    shift_x: float = 0.0
    lordosis: float = 1.0
    height: float = 1.0
    coronal: float = 0.0


@dataclass(frozen=True)
class Body:
    """A vertebral body: centre (r, q), axis angle (rad), height, depth, width (mm)."""

    name: str
    center: np.ndarray
    theta: float
    h: float
    d: float
    w: float


@dataclass(frozen=True)
class Disc:
    """A disc between bodies ``upper`` and ``lower``; ``level`` is its lumbar name or ``""``."""

    name: str
    level: str
    grade: int
    center: np.ndarray
    theta: float
    h: float
    d: float
    w: float
    upper: Body
    lower: Body


@dataclass(frozen=True)
class Spine:
    """Bodies and discs placed in the image plane, plus the canal centre curve sampled every 1 mm."""

    bodies: list[Body]
    discs: list[Disc]
    curve: np.ndarray
    tangent: np.ndarray
    normal: np.ndarray
    knot_s: dict[str, float]
    x0: float
    coronal: float
    canal_ap: float
    fat_mm: float


def grades_for_age(rng: np.random.Generator, age: float) -> tuple[int, ...]:
    """Pfirrmann grades (1..5) per level; degeneration rises with age and at L4-L5/L5-S1.

    Example:
        >>> len(grades_for_age(np.random.default_rng(1), 70.0))
        5
    """
    latent = 3.6 * (age - 20.0) / 65.0 + LEVEL_RISK + rng.normal(0, 0.4) + rng.normal(0, 0.4, 5)
    return tuple(int(g) for g in np.digitize(latent, [0.7, 1.7, 2.7, 3.7]) + 1)


def sample_subject(
    rng: np.random.Generator,
    age: float | None = None,
    slices: tuple[int, int] = (20, 30),
    grades: tuple[int, ...] | None = None,
) -> Subject:
    """Draw a subject: age 20-85, sex, grades, sizes, lordosis, slice count and fat thickness."""
    age = float(rng.uniform(20, 85)) if age is None else float(age)
    sex = str(rng.choice(["F", "M"]))
    drawn = grades_for_age(rng, age)
    return Subject(
        age=age,
        sex=sex,
        grades=tuple(grades) if grades is not None else drawn,
        n_slices=int(rng.integers(slices[0], slices[1] + 1)),
        scale=float(np.clip(rng.normal(1.04 if sex == "M" else 0.97, 0.035), 0.9, 1.08)),
        lordosis=float(np.clip(rng.normal(1.0 - 0.003 * (age - 40), 0.14), 0.6, 1.4)),
        tilt_deg=float(rng.normal(0, 3)),
        top_mm=float(rng.uniform(22, 34)),
        front_frac=float(rng.uniform(0.34, 0.40)),
        canal_ap=float(rng.uniform(6.0, 8.0) - 0.01 * (age - 20)),
        fat_mm=float(rng.uniform(8, 35)),
        height_jitter=rng.normal(1.0, 0.05, len(DISC_H)),
    )


def sample_posture(rng: np.random.Generator, first: bool) -> Posture:
    """Session posture; the first session is the reference (no change)."""
    if first:
        return Posture()
    return Posture(
        rot_deg=float(rng.normal(0, 2.0)),
        shift_r=float(rng.normal(0, 3.0)),
        shift_q=float(rng.normal(0, 3.0)),
        shift_x=float(rng.normal(0, 1.0)),
        lordosis=float(rng.normal(1.0, 0.06)),
        height=float(rng.uniform(0.96, 1.04)),
        coronal=float(rng.normal(0, 0.01)),
    )


def _axis(theta: float) -> np.ndarray:
    return np.array([np.cos(theta), np.sin(theta)])


def _normal(theta: float) -> np.ndarray:
    return np.array([-np.sin(theta), np.cos(theta)])


def build_spine(subject: Subject, posture: Posture, fov: tuple[float, float]) -> Spine:
    """Chain the vertebrae through their wedged discs and place the column in the field of view."""
    s = subject.scale
    heights, depths, widths = BODY_H * s, BODY_D * s, BODY_W * s
    grade_of = dict(zip(LEVELS, subject.grades, strict=True))
    disc_h, wedges, grades, disc_d = [], [], [], []
    for j in range(len(VERTS) - 1):
        name = f"{VERTS[j]}-{VERTS[j + 1]}"
        grade = grade_of.get(name, grade_of["L1-L2"] if VERTS[j][0] == "T" else 1)  # thoracic like L1-L2
        h = DISC_H[j] * s * subject.height_jitter[j] * GRADE_HEIGHT[grade - 1] * posture.height
        d = 0.5 * (depths[j] + depths[j + 1]) + 1.0
        cap = np.degrees(np.arctan(2 * max(h - 1.0, 0.2) / d))  # posterior height stays >= 1 mm
        wedge = WEDGE[j] * (subject.lordosis * posture.lordosis if WEDGE[j] > 0 else 1.0)
        disc_h.append(h)
        wedges.append(np.radians(min(wedge, cap)))
        grades.append(grade)
        disc_d.append(d)
    thetas = np.concatenate([[0.0], np.cumsum(wedges)])
    thetas += np.radians(subject.tilt_deg + posture.rot_deg) - thetas[VERTS.index("L3")]
    centers = [np.zeros(2)]
    for j in range(len(VERTS) - 1):
        mid = 0.5 * (thetas[j] + thetas[j + 1])
        below = centers[j] + heights[j] / 2 * _axis(thetas[j]) + disc_h[j] * _axis(mid)
        centers.append(below + heights[j + 1] / 2 * _axis(thetas[j + 1]))
    centers = np.array(centers)
    l12 = VERTS.index("L1")
    anchor = centers[l12] + (heights[l12] / 2 + disc_h[l12] / 2) * _axis(thetas[l12])
    target = np.array([subject.top_mm + posture.shift_r, fov[1] * subject.front_frac + posture.shift_q])
    l3 = VERTS.index("L3")
    centers += target - np.array([anchor[0], centers[l3][1]])
    sizes = np.stack([thetas, heights, depths, widths], axis=1).tolist()  # plain floats keep float32 math
    bodies = [Body(VERTS[i], centers[i], *sizes[i]) for i in range(len(VERTS))]
    discs = []
    for j in range(len(VERTS) - 1):
        up, lo = bodies[j], bodies[j + 1]
        mid = 0.5 * (up.theta + lo.theta)
        center = up.center + up.h / 2 * _axis(up.theta) + disc_h[j] / 2 * _axis(mid)
        name = f"{up.name}-{lo.name}"
        level = name if name in LEVELS else ""
        width = min(float(DISC_W[j]) * s, 50.0)
        discs.append(Disc(name, level, grades[j], center, mid, float(disc_h[j]), float(disc_d[j]), width, up, lo))
    curve, tangent, normal, knot_s = _canal_curve(bodies, discs, subject.canal_ap)
    return Spine(
        bodies,
        discs,
        curve,
        tangent,
        normal,
        knot_s,
        x0=posture.shift_x,
        coronal=posture.coronal,
        canal_ap=subject.canal_ap,
        fat_mm=subject.fat_mm,
    )


def _canal_curve(bodies: list[Body], discs: list[Disc], canal_ap: float):
    """Spline through points behind each body and disc; sampled every 1 mm with 60 mm run-outs."""
    parts = [bodies[0]]
    for disc, body in zip(discs, bodies[1:], strict=True):
        parts += [disc, body]
    depth = [p.d / 2 + 1.5 + canal_ap * (0.6 if p.name[0] == "S" else 1.0) for p in parts]
    knots = np.array([p.center + dep * _normal(p.theta) for p, dep in zip(parts, depth, strict=True)])
    head = knots[0] - 60 * _axis(parts[0].theta)
    tail = knots[-1] + 60 * _axis(parts[-1].theta)
    pts = np.vstack([head, knots, tail])
    chord = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    spline = CubicSpline(chord, pts, axis=0)
    s = np.arange(0.0, chord[-1], 1.0)
    curve, tangent = spline(s), spline(s, 1)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    knot_s = {p.name: float(c) for p, c in zip(parts, chord[1:-1], strict=True)}
    return curve, tangent, normal, knot_s


def curve_coords(spine: Spine, r: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Arc length ``s`` along the canal curve and signed offset ``d`` (posterior > 0) of points."""
    pts = np.stack([r.ravel(), q.ravel()], axis=1)
    c = spine.curve
    d2 = (pts[:, None, 0] - c[None, :, 0]) ** 2 + (pts[:, None, 1] - c[None, :, 1]) ** 2
    idx = np.argmin(d2, axis=1)
    rel = pts - c[idx]
    s = idx + np.einsum("ij,ij->i", rel, spine.tangent[idx])
    d = np.einsum("ij,ij->i", rel, spine.normal[idx])
    return s.reshape(r.shape), d.reshape(r.shape)


def curve_point(spine: Spine, s: float, d: float = 0.0) -> np.ndarray:
    """Image-plane point (r, q) at arc length ``s`` and offset ``d`` from the canal curve."""
    i = int(np.clip(round(s), 0, len(spine.curve) - 1))
    return spine.curve[i] + (s - i) * spine.tangent[i] + d * spine.normal[i]

"""Tissues of a synthetic lumbar spine, painted back to front into a T2-like volume with disc labels.

Relative intensities (CSF = 1): fat 0.8, muscle 0.24, marrow 0.42-0.57 (fattier with age), cortex and
ligaments ~0.08, annulus 0.19, nucleus 0.95 (grade I) down to 0.17 (grade V). Bright CSF behind the
discs, bright fat and bowel fluid keep the disc from being simply the brightest structure.

Example:
    >>> from discnet.phantoms.anatomy import build_spine, sample_posture, sample_subject
    >>> rng = np.random.default_rng(0)
    >>> grid = Grid((128, 88, 20), (2.08, 2.08, 3.0))
    >>> spine = build_spine(sample_subject(rng), sample_posture(rng, True), grid.fov)
    >>> img, lab = render(spine, grid, {"L1-L2": 5}, rng, age=40.0)
    >>> sorted(int(v) for v in np.unique(lab))
    [0, 5]
"""

from __future__ import annotations

import numpy as np

from discnet.phantoms.anatomy import (
    GRADE_BULGE,
    GRADE_ROUGH,
    SACRAL,
    Body,
    Disc,
    Spine,
    curve_coords,
    curve_point,
)
from discnet.phantoms.render import Canvas, Grid, rbox, textures, upsample

# Nucleus signal, size and nucleus/annulus blur by Pfirrmann grade I..V.
NUCLEUS = np.array([0.95, 0.8, 0.5, 0.3, 0.17])
NUCLEUS_SIZE = np.array([1.0, 0.9, 0.75, 0.6, 0.4])
NUCLEUS_SOFT = np.array([0.5, 0.6, 1.0, 1.3, 1.5])
TISSUE = dict(
    muscle=0.24, bowel=0.34, fluid=0.85, fat=0.8, skin=0.45, psoas=0.3, aorta=0.06, cava=0.33,
    epidural=0.75, csf=1.0, cord=0.4, root=0.28, ligament=0.1, marrow=0.42, joint=0.55,
    modic=0.7, annulus=0.19, nucleus=1.0, vein=0.55,
)  # fmt: skip


def render(spine: Spine, grid: Grid, labels: dict[str, int], rng: np.random.Generator, age: float):
    """Paint one scan; returns (relative intensity float32, label uint8), axes (S->I, A->P, L->R)."""
    fine, coarse = textures(rng, grid)
    cv = Canvas(grid, fine, coarse, spine.x0, spine.coronal)
    n = (max(8, int(grid.fov[0] / 4)), max(8, int(grid.fov[1] / 4)))
    rr, qq = np.meshgrid(np.linspace(0, grid.r[-1], n[0]), np.linspace(0, grid.q[-1], n[1]), indexing="ij")
    cv.s, cv.d = (upsample(a.astype(np.float32), grid.shape[:2]) for a in curve_coords(spine, rr, qq))
    tone = {k: float(v * rng.normal(1.0, 0.06)) for k, v in TISSUE.items()}
    tone["marrow"] += 0.15 * min(max((age - 20) / 65, 0.0), 1.0)
    _background(cv, spine, tone, rng)
    _canal(cv, spine, tone, rng)
    _posterior(cv, spine, tone)
    for body in spine.bodies:
        _body(cv, body, spine, tone, age, rng)
    for disc in spine.discs:
        _disc(cv, disc, labels.get(disc.level, 0), tone, rng)
    return cv.img, cv.lab


def _background(cv: Canvas, spine: Spine, tone: dict, rng: np.random.Generator) -> None:
    g = cv.grid
    np.multiply(cv.fine, 0.12 * tone["muscle"], out=cv.img)
    cv.img += tone["muscle"]
    front = -(float(np.mean([b.d for b in spine.bodies[2:7]])) + spine.canal_ap + 5)

    def bowel(box):
        c, f = cv.coarse[box], cv.fine[box]
        lump = c[::-1, ::-1]
        val = tone["bowel"] * (1 + 0.3 * c + 0.1 * f)
        val += np.clip((lump - 1.3) / 0.8, 0, 1) * (tone["fluid"] - val)
        return val * (1 - 0.9 * np.clip((-lump - 1.6) / 0.6, 0, 1))

    cv.blend(np.clip(0.5 - (cv.d - front) / 3, 0, 1), bowel)
    cv.blend(np.clip(1.5 - np.abs(cv.d - front - 1.5) / 1.2, 0, 1), lambda b: tone["fat"] * (0.9 + 0.1 * cv.fine[b]))
    q_canal = np.interp(g.r, spine.curve[:, 0], spine.curve[:, 1])
    bump = rng.uniform(-6, 6) * np.cos(np.pi * g.r / g.fov[0])
    q_skin = (0.4 * q_canal + 0.6 * np.median(q_canal) + 50 + spine.fat_mm + bump).astype(np.float32)
    depth = q_skin[:, None] - g.q[None, :]
    cv.blend(np.clip(0.5 + (spine.fat_mm - depth) / 1.5, 0, 1), lambda b: tone["fat"] * (1 + 0.06 * cv.fine[b]))
    cv.blend(np.clip(0.5 + (2.0 - depth), 0, 1), lambda b: tone["skin"])
    cv.blend(np.clip(0.5 - depth, 0, 1), lambda b: 0.0)
    s_top, s_bot = spine.knot_s["L1"], spine.knot_s["L5"] + 10
    box = cv.box(curve_point(spine, 0.5 * (s_top + s_bot), front + 14), 0.5 * (s_bot - s_top) + 30)
    if box:  # psoas muscles, wrapped in fat, lateral to the bodies
        s, d = cv.s[box], cv.d[box]
        half = 6 + 12 * np.clip((s - s_top) / (s_bot - s_top), 0, 1)
        for grow, val in ((2.0, tone["fat"]), (0.0, tone["psoas"] * (1 + 0.08 * cv.fine[box]))):
            sdf = rbox(s - 0.5 * (s_top + s_bot), d - front - 14, 0.5 * (s_bot - s_top), half, 5) - grow
            cv.paint(box, sdf, 19 - grow, 19 + 2 * half + grow, val)
            cv.paint(box, sdf, -19 - 2 * half - grow, -19 + grow, val)
    for x_c, rad, s_end, val in ((-9, 9.0, spine.knot_s["L4"], "aorta"), (14, 10.0, spine.knot_s["L5"], "cava")):
        d_v = front - rad + 4
        box = cv.box(curve_point(spine, 0.5 * s_end, d_v), 0.5 * s_end + rad + 30)
        if box:  # below s_end the vessels divide into iliac branches that leave the mid-plane
            dd, below = cv.d[box] - d_v, np.clip(cv.s[box] - s_end, 0, 60)
            radius = rad * (1 - 0.3 * np.clip(below / 10, 0, 1)) * (below < 60)
            half = np.sqrt(np.clip(radius**2 - dd**2, 0, None))
            x_v = x_c + (0.8 if x_c > 0 else -0.8) * below
            cv.paint(box, np.abs(dd) - radius, x_v - half, x_v + half, tone[val])


def _canal(cv: Canvas, spine: Spine, tone: dict, rng: np.random.Generator) -> None:
    s_end, s_sac, rc0 = spine.knot_s["S4"], spine.knot_s["S2"], spine.canal_ap
    box = cv.box(curve_point(spine, 0.5 * s_end), 0.5 * s_end + 20)
    if box is None:
        return
    s, d = cv.s[box], cv.d[box]
    rc = np.interp(s, [0, spine.knot_s["L5-S1"], s_sac], [rc0, rc0, 2.0]).astype(np.float32)
    cv.paint(box, np.maximum(np.abs(d - 1.5) - rc - 1.5, s - s_end), -12, 12, tone["epidural"])
    half = 10.0 * np.sqrt(np.clip(1 - (d / rc) ** 2, 0, 1))
    cv.paint(box, np.maximum(np.abs(d) - rc, s - s_sac), -half, half, tone["csf"])
    s_conus = spine.knot_s["L1-L2"] - rng.uniform(0, 10)
    rad = 3.5 * np.sqrt(np.clip((s_conus - s) / 15, 0, 1))
    cord = 1.3 * rad * np.sqrt(np.clip(1 - (d / np.maximum(rad, 1e-3)) ** 2, 0, 1))
    cv.paint(box, np.abs(d) - rad, -cord, cord, tone["cord"])
    for _ in range(8):  # cauda equina: thin roots that fan out downwards
        d_r, x_r, drift = rng.uniform(-0.3, 0.7), rng.uniform(-6, 6), rng.uniform(0.02, 0.06)
        x_root = x_r + (drift if x_r > 0 else -drift) * np.clip(s - s_conus, 0, None)
        sdf = np.maximum(np.abs(d - d_r * rc) - 0.6, np.maximum(s_conus - s, s - s_end))
        cv.paint(box, sdf, x_root - 0.8, x_root + 0.8, tone["root"])
    cv.paint(box, np.abs(d + rc + 1.0) - 0.6, -8, 8, tone["ligament"])  # posterior longitudinal ligament


def _piece(cv, spine, s0, d0, hs, hd, rad, lo, hi, value, shear=0.0, marrow=None) -> None:
    """A rounded box in canal coordinates; with ``marrow`` it is bone (dark cortex, marrow inside)."""
    box = cv.box(curve_point(spine, s0, d0), np.hypot(hs, hd) * (1 + abs(shear)) + 4)
    if box is None:
        return
    dd = cv.d[box] - d0
    sdf = rbox(cv.s[box] - s0 - shear * dd, dd, hs, hd, rad)
    cv.paint(box, sdf, lo, hi, value)
    if marrow is not None:
        cv.paint(box, sdf + 1.0, lo + 1.0, hi - 1.0, marrow * (1 + 0.1 * cv.coarse[box] + 0.05 * cv.fine[box]))


def _posterior(cv: Canvas, spine: Spine, tone: dict) -> None:
    bone, lig, rc = 0.08, tone["ligament"], spine.canal_ap
    mar = tone["marrow"] * 0.95
    for upper, lower in zip(spine.bodies[:-1], spine.bodies[1:], strict=True):
        s_v, h, s_disc = spine.knot_s[upper.name], upper.h, spine.knot_s[f"{upper.name}-{lower.name}"]
        if upper.name[0] == "S":
            _piece(cv, spine, s_v, 0.6 * rc + 5, 0.5 * h + 2, 4, 1, -30, 30, bone, marrow=mar)
            _piece(cv, spine, s_v, 0.6 * rc + 12, 0.3 * h, 4, 2, -4, 4, bone, marrow=mar)
            continue
        for sign in (1, -1):
            side = lambda a, b, sign=sign: sorted((sign * a, sign * b))  # noqa: E731
            _piece(cv, spine, s_disc - 2, -1, 0.3 * h, rc + 1, 0.3 * h, *side(11, 20), 0.85 * tone["fat"])
            _piece(cv, spine, s_disc - 0.2 * h, 0, 2.5, 2.5, 2.5, *side(11, 20), tone["cord"])
            _piece(cv, spine, s_v - 0.15 * h, 0, 0.22 * h, rc + 2, 3, *side(11, 18), bone, marrow=mar)
            _piece(cv, spine, s_disc, rc + 7, 0.45 * h, 6, 3, *side(13, 24), bone, marrow=mar)
            _piece(cv, spine, s_disc, rc + 7, 0.6, 5.5, 0.3, *side(14, 26), tone["joint"], shear=0.3)
            reach = 30 if upper.name == "L3" else 24
            _piece(cv, spine, s_v - 0.1 * h, -2, 0.18 * h, 5, 2.5, *side(18, reach), bone, marrow=mar)
        _piece(cv, spine, s_disc, rc + 4, 6, 2.5, 1, -12, 12, lig)  # ligamentum flavum
        _piece(cv, spine, s_disc + 0.2 * h, rc + 22, 0.4 * h, 12, 4, -3, 3, 0.7 * tone["muscle"])  # interspinous
        _piece(cv, spine, s_v + 0.1 * h, rc + 6.5, 0.3 * h, 3.5, 2, -16, 16, bone, marrow=mar)
        _piece(cv, spine, s_v + 0.25 * h, rc + 24, 0.28 * h, 14, 0.25 * h, -3.5, 3.5, bone, shear=0.25, marrow=mar)


def _body(cv: Canvas, body: Body, spine: Spine, tone: dict, age: float, rng: np.random.Generator) -> None:
    box = cv.box(body.center, 0.5 * np.hypot(body.h, body.d) + 6)
    if box is None:
        return
    u, v = cv.plane(box, body.center, body.theta)
    half = body.w / 2 * np.clip(1 - np.abs(2 * v / body.d) ** 2.5, 0, 1) ** 0.4
    c = cv.coarse[box]
    spots = np.clip(c[::-1] - 1.0, 0, None) * (0.5 * min(max((age - 30) / 50, 0.0), 1.0))
    marrow = tone["marrow"] * (1 + 0.1 * c + 0.06 * cv.fine[box] + spots)
    waist = 1.5 * (1 - (2 * u / body.h) ** 2) * (v < 0)  # concave anterior surface
    sdf = rbox(u, v, body.h / 2, body.d / 2 - waist, 2.5)
    cv.paint(box, sdf, -half, half, 0.07)
    fused = 4.5 * (body.name in SACRAL and body.name != "S1")  # sacral segments: one bone
    inner = rbox(u + fused / 2, v, body.h / 2 - 1.2 + fused / 2, body.d / 2 - 1.2 - waist, 1.5)
    cv.paint(box, inner, -half + 1.2, half - 1.2, marrow)
    cv.paint(box, rbox(u, v - body.d / 2 + 4, 2.0, 2.5, 1.5), -3, 3, tone["vein"])  # basivertebral vein
    for disc in spine.discs:
        if disc.grade >= 4 and body in (disc.upper, disc.lower):  # endplate changes and spurs
            side = 1 if disc.upper is body else -1
            band = rng.uniform(1, 4) if disc.grade == 5 else rng.uniform(0.5, 2.5)
            val = 0.3 * tone["marrow"] / 0.42 if rng.random() < 0.3 else tone["modic"]
            rim = rng.uniform(1, 2.5) * (disc.grade == 5)  # sclerotic endplate: dark like the worn disc
            for width, value in ((band + rim, val), (rim, 0.12)):
                sdf = np.abs(u - side * (body.h / 2 - width / 2)) - width / 2
                cv.paint(box, np.maximum(sdf, np.abs(v) - body.d / 2 + 2), -half + 2, half - 2, value)
            for corner in (1, -1) if disc.grade == 5 else (1,):
                spur = rbox(u - side * body.h / 2, v + corner * (body.d / 2 + 1), 2.0, 2.5, 1.5)
                cv.paint(box, spur, -half, half, 0.09)


def _disc(cv: Canvas, disc: Disc, label: int, tone: dict, rng: np.random.Generator) -> None:
    up, lo, g = disc.upper, disc.lower, disc.grade - 1
    amp, bulge = min(float(GRADE_ROUGH[g]), 0.3 * disc.h), float(GRADE_BULGE[g])
    half_d = disc.d / 2 + bulge / 2

    def frame(box):
        au = cv.plane(box, up.center, up.theta)[0] - up.h / 2
        al = cv.plane(box, lo.center, lo.theta)[0] + lo.h / 2
        u, v = cv.plane(box, disc.center, disc.theta)
        conc = 1.2 * (1 - 0.15 * g) * np.clip(1 - (2 * v / disc.d) ** 2, 0, 1)
        return -(au + conc), al - conc, u, v

    box = cv.box(disc.center, 0.5 * disc.d + disc.h + 8)
    if box is not None:
        above, below, _, v = frame(box)
        near = (np.maximum(above, below) < amp + cv.edge) & (np.abs(v - bulge / 2) < half_d + cv.edge)
        box = cv.shrink(box, near)
    if box is None:
        return
    above, below, u, v = frame(box)
    x = cv.lateral(box)
    sdf = []
    for side in (above, below):  # irregular endplates: independent ripples above and below
        k = (rng.uniform(0.1, 0.35, (3, 2)) * rng.choice([-1, 1], (3, 2))).tolist()
        ph = rng.uniform(0, 2 * np.pi, 3).tolist()
        ripple = sum(  # sin(a v + b x + p), expanded so that only 2D and 1D sines are computed
            np.sin(k[i][0] * v + ph[i])[..., None] * np.cos(k[i][1] * x)
            + np.cos(k[i][0] * v + ph[i])[..., None] * np.sin(k[i][1] * x)
            for i in range(3)
        )
        sdf.append(side[..., None] - amp / 2 * ripple)
    sdf = np.maximum(*sdf)
    half = disc.w / 2 * np.sqrt(np.clip(1 - ((v - bulge / 2) / half_d) ** 2, 0, 1))
    value = tone["annulus"] * (1 + 0.06 * cv.fine[box])
    if not disc.level and disc.name[0] == "S":
        value = tone["marrow"] * (0.5 if disc.name == "S1-S2" else 0.8)
    else:
        size, soft = float(NUCLEUS_SIZE[g]), float(NUCLEUS_SOFT[g])
        r2 = (u / (0.42 * disc.h)) ** 2 + ((v - 0.06 * disc.d) / (0.38 * disc.d * size)) ** 2
        weight = np.clip(1 - r2[..., None] - (x / (0.34 * disc.w * size)) ** 2, 0, 1) ** soft
        nucleus = tone["nucleus"] * float(NUCLEUS[g]) * (1 - 0.35 * np.exp(-((u / 0.7) ** 2)) * (g == 1))
        value = value + weight * (nucleus[..., None] - value)
        if g == 4:  # vacuum phenomenon: gas in a collapsed disc
            value = np.where(cv.fine[box] > 1.8, 0.04, value)
    cv.paint(box, sdf, -half, half, value, label)

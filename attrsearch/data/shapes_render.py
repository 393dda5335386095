"""The scene drawing of the built-in ``shapes`` benchmark (``attrsearch.data.shapes`` generates,
caches and serves the splits): the class layout, the shapes, the context cues and ``Painter``.

A class is a (shape, colour) pair laid out so that every shape and every colour belongs to two
classes (for ``num_classes >= 4``); hard negatives are unlabelled objects with a class's shape in
another class's colour. ``Painter.render`` draws one image, in this order: textured background,
clutter, context cues, objects (later objects occlude earlier ones), without anti-aliasing, so the
masks are exact. All randomness comes from the generator it is given.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Collection
from typing import Any

import cv2
import numpy as np

from attrsearch.config import ShapesConfig
from attrsearch.config.data import NUM_CONTEXT_CUES

SHAPES = ("disc", "square", "triangle", "cross", "ring", "star", "diamond", "hexagon")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (35, 165, 55),
    "blue": (40, 75, 225),
    "yellow": (235, 210, 35),
    "magenta": (210, 45, 200),
    "cyan": (35, 200, 210),
    "orange": (245, 130, 20),
    "white": (240, 240, 240),
}
CUES = ("rails", "water", "frame", "checker", "zigzag", "dots")
assert len(CUES) == NUM_CONTEXT_CUES
MAX_ROTATION = math.radians(20.0)  # small, so that square and diamond stay different shapes
MIN_VISIBLE = 0.5  # an occluded class object keeps at least this share of its pixels
PLACEMENT_TRIES = 30


def class_table(num_classes: int) -> list[tuple[int, int]]:
    """(shape index, colour index) per class: class k has shape k % n and colour (k % n + k // n) % n.

    With n = ceil(C / 2) shapes and colours, each shape is drawn in two colours and each colour
    on two shapes (C even, C >= 4), so a classifier needs both cues.
    """
    n = max(2, math.ceil(num_classes / 2))
    return [(k % n, (k % n + k // n) % n) for k in range(num_classes)]


def hard_negatives(num_classes: int) -> list[tuple[int, int]]:
    """(shape, colour) pairs of unlabelled distractors: the class shapes in the class colours that do
    not form a class; when every pair is a class (C = 4), the next unused shape in the class colours."""
    n = max(2, math.ceil(num_classes / 2))
    classes = set(class_table(num_classes))
    pairs = [(s, c) for s in range(n) for c in range(n) if (s, c) not in classes]
    return pairs or [(n, c) for c in range(n)]


def class_names(num_classes: int) -> tuple[str, ...]:
    colours = list(COLOURS)
    return tuple(f"{colours[c]}_{SHAPES[s]}" for s, c in class_table(num_classes))


def cue_of_class(cfg: ShapesConfig) -> dict[int, str]:
    """Biased class -> its context cue name (in the order of ``context.biased_classes``)."""
    return {c: CUES[i] for i, c in enumerate(cfg.context.biased_classes)}


def confound_cue_rate(cfg: ShapesConfig) -> float:
    """The probability that a training image of the confound set (``train_mode='confound'``) shows
    a given biased class's cue: ``p_train * P(class present) + p_cue_alone * P(its cue drawn alone)``.

    Object classes are drawn i.i.d. uniform over C, their number n uniform in [min_objects,
    max_objects]; the lone cue picks uniformly among the absent biased classes, whose set A (of b
    biased classes) has the probability sum_s (-1)^s comb(b-|A|, s) ((C-|A|-s)/C)^n (inclusion-exclusion).
    """
    C, b = cfg.num_classes, len(cfg.context.biased_classes)
    ns = range(cfg.min_objects, cfg.max_objects + 1)

    def mean_over_n(q: float) -> float:
        return sum(q**n for n in ns) / len(ns)

    present = 1.0 - mean_over_n((C - 1) / C)
    alone = sum(
        math.comb(b - 1, a - 1)
        / a
        * sum((-1) ** s * math.comb(b - a, s) * mean_over_n((C - a - s) / C) for s in range(b - a + 1))
        for a in range(1, b + 1)
    )
    return cfg.context.p_train * present + cfg.context.p_cue_alone * alone


# ---------------------------------------------------------------- shapes (normalised coordinates)
# u, v: pixel offsets from the object centre divided by its half-size r, rotated; v points down.


def _star(u: np.ndarray, v: np.ndarray, inner: float = 0.45) -> np.ndarray:
    """Five-pointed star of outer radius 1: polar test against the edge outer->inner vertex."""
    rho = np.hypot(u, v)
    alpha = np.mod(np.arctan2(v, u) + math.pi / 2, 2 * math.pi / 5)  # 0 at an outer vertex
    beta = np.minimum(alpha, 2 * math.pi / 5 - alpha)  # angular distance to the nearest point
    s36, c36 = math.sin(math.pi / 5), math.cos(math.pi / 5)
    edge = inner * s36 / (inner * s36 * np.cos(beta) - np.sin(beta) * (inner * c36 - 1.0))
    return rho <= edge


def _shape_mask(kind: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    name = SHAPES[kind]
    if name == "disc":
        return u * u + v * v <= 1.0
    if name == "ring":
        d2 = u * u + v * v
        return (d2 <= 1.0) & (d2 >= 0.3)
    if name == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.82
    if name == "diamond":
        return np.abs(u) / 0.65 + np.abs(v) <= 1.0
    if name == "triangle":  # equilateral, circumradius 1.1, apex up
        a = 0.55
        return (v <= a) & (0.866 * u - 0.5 * v <= a) & (-0.866 * u - 0.5 * v <= a)
    if name == "cross":
        au, av = np.abs(u), np.abs(v)
        return ((au <= 0.3) & (av <= 1.0)) | ((av <= 0.3) & (au <= 1.0))
    if name == "star":
        return _star(u, v)
    if name == "hexagon":
        return (np.abs(u) <= 0.9) & (np.abs(0.5 * u + 0.866 * v) <= 0.9) & (np.abs(0.5 * u - 0.866 * v) <= 0.9)
    raise ValueError(name)


@functools.lru_cache(maxsize=1)
def _textures() -> tuple[np.ndarray, ...]:
    """scikit-image's CC0 grey textures (brick, grass, gravel), float32 (512, 512) standardised."""
    import skimage.data

    out = []
    for name in ("brick", "grass", "gravel"):
        t = getattr(skimage.data, name)().astype(np.float32)
        out.append((t - t.mean()) / (t.std() + 1e-6))
    return tuple(out)


class Painter:
    """Draws one split's images; all randomness comes from the ``rng`` it is given."""

    def __init__(self, cfg: ShapesConfig, size: int, split: str):
        self.cfg = cfg
        self.H = size
        self.C = cfg.num_classes
        self.table = class_table(cfg.num_classes)
        self.n_sc = max(2, math.ceil(cfg.num_classes / 2))
        self.negatives = hard_negatives(cfg.num_classes)
        self.palette = np.array(list(COLOURS.values()), dtype=np.float32) / 255.0
        self.cue_of = cue_of_class(cfg)
        self.p_cue = cfg.context.p_train if split == "train" else cfg.context.p_test
        noise = split == "train" and cfg.context.train_mode == "noise"
        self.noise_rate = confound_cue_rate(cfg) if noise else None
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        self.yy, self.xx = yy, xx
        self.line = max(1, round(size / 64))  # stroke width of cues and clutter
        self.textures = _textures() if cfg.background != "noise" else ()

    # ------------------------------------------------------------ background and clutter
    def _tint(self, rng: np.random.Generator) -> np.ndarray:
        """A muted random colour: grey plus a little saturation."""
        grey = rng.uniform(0.25, 0.7)
        return np.clip(grey + rng.uniform(-0.18, 0.18, 3), 0.05, 0.95).astype(np.float32)

    def _noise(self, rng: np.random.Generator, octaves=(3, 6, 12, 24)) -> np.ndarray:
        """Multi-scale value noise in roughly [-1, 1]: bicubic upsampled random grids, 1/f weights."""
        H = self.H
        acc = np.zeros((H, H), np.float32)
        for i, o in enumerate(octaves):
            grid = rng.random((o, o), dtype=np.float32) * 2.0 - 1.0
            acc += cv2.resize(grid, (H, H), interpolation=cv2.INTER_CUBIC) * (0.6**i)
        return acc / 1.5

    def _background(self, rng: np.random.Generator) -> np.ndarray:
        H = self.H
        use_texture = self.cfg.background == "textures" or (self.cfg.background == "mixed" and rng.random() < 0.5)
        if use_texture:
            tex = self.textures[rng.integers(len(self.textures))]
            crop = int(min(tex.shape[0], H * rng.uniform(1.5, 6.0)))
            y, x = rng.integers(0, tex.shape[0] - crop + 1, 2)
            lum = cv2.resize(tex[y : y + crop, x : x + crop], (H, H), interpolation=cv2.INTER_AREA)
            lum = lum * rng.uniform(0.1, 0.22)
        else:
            lum = self._noise(rng) * rng.uniform(0.2, 0.45)
        mix = np.clip(self._noise(rng, (2, 4)) + 0.5, 0.0, 1.0)[..., None]  # two tints, blended
        t1, t2 = self._tint(rng), self._tint(rng)
        return (t1 * (1 - mix) + t2 * mix) * (1.0 + lum[..., None])

    def _clutter(self, rng: np.random.Generator, img: np.ndarray) -> None:
        """Blobs (wobbly ellipses) and strokes (polylines); half of them in an object colour."""
        H = self.H
        for _ in range(rng.poisson(self.cfg.clutter)):
            if rng.random() < 0.5:
                colour = self.palette[rng.integers(self.n_sc)] * rng.uniform(0.75, 1.1) + rng.normal(0, 0.05, 3)
            else:
                colour = rng.uniform(0.0, 1.0, 3)
            if rng.random() < 0.5:
                cy, cx = rng.uniform(0, H, 2)
                a, b = rng.uniform(0.03, 0.12, 2) * H
                t = rng.uniform(0, math.pi)
                dy, dx = self.yy - cy, self.xx - cx
                u = (dx * math.cos(t) + dy * math.sin(t)) / a
                v = (-dx * math.sin(t) + dy * math.cos(t)) / b
                theta = np.arctan2(v, u)
                k1, k2 = rng.uniform(0, 2 * math.pi, 2)
                wobble = 1.0 + 0.25 * np.sin(2 * theta + k1) + 0.2 * np.sin(3 * theta + k2)
                mask = u * u + v * v <= wobble * wobble
            else:
                pts = np.cumsum(rng.normal(0, 0.15 * H, (rng.integers(2, 5), 2)), axis=0) + rng.uniform(0, H, 2)
                m8 = np.zeros((H, H), np.uint8)
                cv2.polylines(m8, [np.round(pts).astype(np.int32)], False, 1, int(rng.integers(1, 3)) * self.line)
                mask = m8.astype(bool)
            img[mask] = np.clip(colour, 0, 1)

    # ------------------------------------------------------------ context cues
    def _cue_extent(self, cue: str, r: float) -> tuple[float, float, float, float]:
        """(up, down, left, right) pixels the cue reaches from an object centre of half-size r."""
        t = self.line
        if cue == "rails":
            return r, r + 2 + max(3, 0.7 * r) + t, 1.6 * r, 1.6 * r
        if cue == "water":
            return r, r + 3 + max(4, 0.9 * r), 2.0 * r, 2.0 * r
        if cue == "frame":
            e = r + max(2, 0.3 * r) + t
            return e, e, e, e
        if cue == "checker":
            a = max(6, 1.2 * r)
            return max(r, a / 2), max(r, a / 2), r, r + 2 + a
        if cue == "zigzag":
            return r + 3 + max(3, 0.5 * r) + t, r, 1.5 * r, 1.5 * r
        if cue == "dots":
            p = max(3, 0.6 * r)
            return max(r, p + 1), max(r, p + 1), r + 3 + 2 * p + 1, r
        raise ValueError(cue)

    def _cue(self, cue: str, cy: float, cx: float, r: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Pixels of ``cue`` around an object at (cy, cx) of half-size r: (mask (H,W) bool, colours (H,W,3))."""
        yy, xx, t = self.yy, self.xx, self.line
        dy, dx = yy - cy, xx - cx
        jitter = rng.normal(0, 0.04, 3).astype(np.float32)
        ones = np.ones((self.H, self.H, 1), np.float32)
        if cue == "rails":  # two silver rails and brown sleepers under the object
            top = round(cy + r + 2)
            bottom = top + round(max(3, 0.7 * r))
            span = np.abs(dx) <= 1.6 * r
            rails = span & (((yy >= top) & (yy < top + t)) | ((yy >= bottom) & (yy < bottom + t)))
            ties = span & (yy >= top) & (yy < bottom + t) & (np.mod(xx - round(cx), max(3, round(0.5 * r))) < t)
            colour = np.where(rails[..., None], np.float32([0.78, 0.78, 0.82]), np.float32([0.45, 0.28, 0.12]))
            return rails | ties, np.clip(colour + jitter, 0, 1)
        if cue == "water":  # a band of wavy light/dark blue stripes under the object
            top = cy + r + 3
            h = max(4, 0.9 * r)
            ph = rng.uniform(0, 2 * math.pi)
            wave = np.sin(xx * (6.0 / max(r, 3)) + ph)
            mask = (np.abs(dx) <= 2.0 * r) & (yy >= top + wave) & (yy <= top + h)
            stripe = 0.5 + 0.5 * np.sin((yy - 1.5 * wave) * 1.6)
            colour = np.float32([0.1, 0.3, 0.6]) + stripe[..., None] * np.float32([0.35, 0.35, 0.3])
            return mask, np.clip(colour + jitter, 0, 1)
        if cue == "frame":  # a dashed black/white square outline around the object
            inner = r + max(2, 0.3 * r)
            cheb = np.maximum(np.abs(dx), np.abs(dy))
            mask = (cheb >= inner) & (cheb < inner + t)
            dash = (np.floor((xx + yy) / (2 * t)) % 2).astype(np.float32)[..., None]
            return mask, np.clip(0.05 + 0.9 * dash * ones + jitter, 0, 1)
        if cue == "checker":  # a black/yellow checkerboard patch to the right of the object
            a = max(6, 1.2 * r)
            x0 = cx + r + 2
            mask = (xx >= x0) & (xx < x0 + a) & (np.abs(dy) < a / 2)
            cell = max(2, round(a / 4))
            board = ((np.floor((xx - x0) / cell) + np.floor((yy - cy) / cell)) % 2).astype(np.float32)[..., None]
            colour = np.float32([0.05, 0.05, 0.05]) * (1 - board) + np.float32([0.98, 0.86, 0.0]) * board
            return mask, np.clip(colour + jitter, 0, 1)
        if cue == "zigzag":  # a lime zig-zag line above the object
            amp = max(3, 0.5 * r)
            base = cy - r - 3 - amp
            period = max(4, 0.8 * r)
            tri = np.abs(np.mod(dx / period, 2.0) - 1.0)  # triangle wave in [0, 1]
            mask = (np.abs(dx) <= 1.5 * r) & (np.abs(yy - (base + amp * (tri - 0.5))) < 0.5 * t + 0.5)
            return mask, np.clip(np.float32([0.55, 0.95, 0.3]) * ones + jitter, 0, 1)
        if cue == "dots":  # a 3 x 3 grid of pink dots to the left of the object
            p = max(3, 0.6 * r)
            gx, gy = cx - r - 3 - p, cy
            qy = dy - p * np.clip(np.round((yy - gy) / p), -1, 1)
            qx = (xx - gx) - p * np.clip(np.round((xx - gx) / p), -1, 1)
            mask = qx * qx + qy * qy <= max(1.0, 0.2 * p) ** 2
            return mask, np.clip(np.float32([1.0, 0.45, 0.7]) * ones + jitter, 0, 1)
        raise ValueError(cue)

    # ------------------------------------------------------------ objects
    def _place(
        self, rng: np.random.Generator, r: float, extent: tuple[float, float, float, float] | None
    ) -> tuple[float, float]:
        """A centre with the object (and its cue, if any) inside the image."""
        up, down, left, right = extent if extent is not None else (r, r, r, r)
        H = self.H
        lo_y, hi_y = max(up, r), H - 1 - max(down, r)
        lo_x, hi_x = max(left, r), H - 1 - max(right, r)
        if lo_y > hi_y:  # cue does not fit: keep only the object inside
            lo_y, hi_y = r, H - 1 - r
        if lo_x > hi_x:
            lo_x, hi_x = r, H - 1 - r
        return rng.uniform(lo_y, hi_y), rng.uniform(lo_x, hi_x)

    def _object_pixels(self, kind: int, cy: float, cx: float, r: float, angle: float):
        """(window slices, bool mask, u, v) of a shape; computed only in its bounding window."""
        H = self.H
        y0, y1 = max(0, int(cy - 1.2 * r) - 1), min(H, int(cy + 1.2 * r) + 2)
        x0, x1 = max(0, int(cx - 1.2 * r) - 1), min(H, int(cx + 1.2 * r) + 2)
        sl = (slice(y0, y1), slice(x0, x1))
        dy, dx = self.yy[sl] - cy, self.xx[sl] - cx
        ca, sa = math.cos(angle), math.sin(angle)
        u = (dx * ca + dy * sa) / r
        v = (-dx * sa + dy * ca) / r
        return sl, _shape_mask(kind, u, v), u, v

    def render(self, rng: np.random.Generator) -> dict[str, Any]:
        """One image: ``image`` (H,W,3) uint8, ``instances`` (H,W) uint8 (box index + 1),
        ``boxes`` [(x0, y0, x1, y1, class)], ``context`` (H,W) uint8, ``cue_owners``."""
        return self.compose(self.scene(rng))

    def scene(self, rng: np.random.Generator) -> dict[str, Any]:
        """What one image is drawn from, in the generator's draw order: ``base`` (H,W,3) float
        (background and clutter), ``objects`` (drawing order; class -1 = hard negative), ``cues``
        [(owner class, mask (H,W) bool, colours (H,W,3))] and the pixel ``noise`` (H,W,3)."""
        base = self._background(rng)
        self._clutter(rng, base)
        objs, free = self._objects(rng)
        self._arrange(rng, objs)
        cues = self._cues(rng, objs, free)
        noise = rng.normal(0.0, 0.025, base.shape).astype(np.float32)
        return {"base": base, "objects": objs, "cues": cues, "noise": noise}

    def compose(
        self,
        scene: dict[str, Any],
        cue_classes: Collection[int] | None = None,
        object_classes: Collection[int] | None = None,
    ) -> dict[str, Any]:
        """Draw ``scene`` with only the cues whose owner class is in ``cue_classes`` and the objects
        whose class is in ``object_classes`` (None: all; hard negatives are class -1): a left-out
        cue or object leaves what lies under it (background, clutter, cues, objects) visible.
        Returns ``render``'s dict; ``cue_owners`` lists the classes whose cue has visible pixels."""
        H = self.H
        img = scene["base"].copy()
        cue_mask, ids, drawn = np.zeros((H, H), bool), np.zeros((H, H), np.uint8), []
        for owner, m, colour in scene["cues"]:
            if cue_classes is None or owner in cue_classes:
                img[m] = colour[m]
                cue_mask |= m
                drawn.append((owner, m))
        for j, o in enumerate(scene["objects"]):
            if object_classes is None or o["cls"] in object_classes:
                shade = 1.0 + o["shade"][0] * o["u"] + o["shade"][1] * o["v"]
                img[o["sl"]][o["mask"]] = (o["rgb"] * shade[..., None])[o["mask"]]
                ids[o["sl"]][o["mask"]] = j + 1
        img += scene["noise"]
        image = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
        instances, boxes = self._annotate(scene["objects"], ids)
        context = cue_mask & (ids == 0)
        owners = sorted({owner for owner, m in drawn if (m & context).any()})
        out = {"image": image, "instances": instances, "boxes": boxes, "context": context.astype(np.uint8)}
        return out | {"cue_owners": owners}

    def _objects(self, rng: np.random.Generator) -> tuple[list[dict[str, Any]], list[int]]:
        """The objects in drawing order (class, shape, colour, cue, size, rotation, colour, shading;
        class -1: a hard negative) and the biased classes whose cue stands alone (no object)."""
        cfg, H = self.cfg, self.H
        n_obj = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
        objs: list[dict[str, Any]] = []
        for cls in rng.integers(self.C, size=n_obj):
            s, c = self.table[int(cls)]
            objs.append({"cls": int(cls), "shape": s, "colour": c})
        if self.negatives and rng.random() < cfg.p_hard_negative:
            s, c = self.negatives[rng.integers(len(self.negatives))]
            objs.append({"cls": -1, "shape": s, "colour": c})
        objs = [objs[j] for j in rng.permutation(len(objs))]  # drawing order: later ones occlude
        present = {o["cls"] for o in objs if o["cls"] >= 0}
        if self.noise_rate is not None:  # the noise control: each cue as often, whatever the classes
            free = [k for k in self.cue_of if rng.random() < self.noise_rate]
        else:
            for cls in present:  # the first instance of a present biased class may bring its cue
                if cls in self.cue_of and rng.random() < self.p_cue:
                    next(o for o in objs if o["cls"] == cls)["cue"] = self.cue_of[cls]
            absent = [k for k in self.cue_of if k not in present]
            free = [absent[rng.integers(len(absent))]] if absent and rng.random() < cfg.context.p_cue_alone else []
        for o in objs:
            o["r"] = 0.5 * H * rng.uniform(cfg.min_object_size, cfg.max_object_size)
            o["angle"] = rng.uniform(-MAX_ROTATION, MAX_ROTATION)
            base = self.palette[o["colour"]] * rng.uniform(0.85, 1.08) + rng.normal(0, 0.04, 3)
            o["rgb"] = np.clip(base, 0, 1).astype(np.float32)
            gradient, direction = rng.uniform(0.0, 0.25), rng.uniform(0, 2 * math.pi)
            o["shade"] = gradient * np.array([math.cos(direction), math.sin(direction)])  # linear shading
        return objs, free

    def _arrange(self, rng: np.random.Generator, objs: list[dict[str, Any]]) -> np.ndarray:
        """Place the objects (centre, pixels), resampling until every class object keeps MIN_VISIBLE of
        its pixels (at most PLACEMENT_TRIES times); the id map (H,W) uint8 (object index + 1)."""
        H = self.H
        for _ in range(PLACEMENT_TRIES):
            ids = np.zeros((H, H), np.uint8)
            for j, o in enumerate(objs):
                ext = self._cue_extent(o["cue"], o["r"]) if "cue" in o else None
                o["cy"], o["cx"] = self._place(rng, o["r"], ext)
                o["sl"], o["mask"], o["u"], o["v"] = self._object_pixels(
                    o["shape"], o["cy"], o["cx"], o["r"], o["angle"]
                )
                ids[o["sl"]][o["mask"]] = j + 1
            ok = all(
                o["cls"] < 0 or (ids[o["sl"]][o["mask"]] == j + 1).mean() >= MIN_VISIBLE for j, o in enumerate(objs)
            )
            if ok:
                break
        return ids

    def _cues(
        self, rng: np.random.Generator, objs: list[dict[str, Any]], free: list[int]
    ) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """The objects' cues, then the free-standing cues of the classes in ``free``, each placed
        like an object of random size: [(owner class, mask (H,W) bool, colours (H,W,3))]."""
        cfg, H = self.cfg, self.H
        planted = [(o["cls"], o["cue"], o["cy"], o["cx"], o["r"]) for o in objs if "cue" in o]
        for owner in free:
            r = 0.5 * H * rng.uniform(cfg.min_object_size, cfg.max_object_size)
            cue = self.cue_of[owner]
            cy, cx = self._place(rng, r, self._cue_extent(cue, r))
            planted.append((owner, cue, cy, cx, r))
        return [(owner, *self._cue(cue, cy, cx, r, rng)) for owner, cue, cy, cx, r in planted]

    def _annotate(self, objs: list[dict[str, Any]], ids: np.ndarray) -> tuple[np.ndarray, list[tuple[int, ...]]]:
        """Exact annotation from the final id map: visible pixels only; hard negatives get no box."""
        instances = np.zeros((self.H, self.H), np.uint8)
        boxes = []
        for j, o in enumerate(objs):
            if o["cls"] < 0:
                continue
            vis = ids == j + 1
            ys, xs = np.nonzero(vis)
            if ys.size == 0:
                continue
            boxes.append((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1, o["cls"]))
            instances[vis] = len(boxes)
        return instances, boxes

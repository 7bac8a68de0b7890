"""Furniture templates: pieces built from boxes, cylinders and spheres in a local frame.

A piece is modelled around its footprint centre on the floor: local ``x`` runs
along its width, ``y`` up, and local ``-z`` is its back (the side put against a
wall). Part materials are slots into the piece's own material list; ``place``
turns a piece into world shapes with scene-wide material indices.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from keras_depth.sources.synthetic.materials import Material, furniture_material
from keras_depth.sources.synthetic.primitives import Box, Cylinder, Shape, Sphere

LEG_HALF = 0.025  # half thickness of table and chair legs, metres
TOP_HALF_THICKNESS = 0.02  # half thickness of table tops, metres
MAX_TOP_HEIGHT = 1.3  # metres; taller cabinets get nothing on top


@dataclass(frozen=True)
class Piece:
    """One piece of furniture in its local frame.

    Attributes:
        half_width: Footprint half extent along local ``x``, metres.
        half_depth: Footprint half extent along local ``z``, metres.
        parts: Shapes in the local frame; their ``material`` is a slot in ``materials``.
        materials: The piece's materials.
        top_height: Height in metres of a flat top that can hold small objects, or None.
    """

    half_width: float
    half_depth: float
    parts: tuple[Shape, ...]
    materials: tuple[Material, ...]
    top_height: float | None = None


def _box(x0: float, x1: float, y0: float, y1: float, z0: float, z1: float, slot: int = 0) -> Box:
    """A local axis-aligned box from its extents in metres."""
    return Box(
        ((x0 + x1) / 2, (y0 + y1) / 2, (z0 + z1) / 2),
        ((x1 - x0) / 2, (y1 - y0) / 2, (z1 - z0) / 2),
        0.0,
        slot,
    )


def _legs(hw: float, hd: float, height: float, slot: int) -> list[Box]:
    """Four square legs inset at the corners of a ``2 hw`` x ``2 hd`` footprint."""
    inset = 2 * LEG_HALF
    return [
        Box((sx * (hw - inset), height / 2, sz * (hd - inset)), (LEG_HALF, height / 2, LEG_HALF), 0.0, slot)
        for sx in (-1, 1)
        for sz in (-1, 1)
    ]


def cabinet(rng: np.random.Generator) -> Piece:
    """Wardrobe, bookcase or sideboard: one solid block against a wall."""
    hw, hd, h = rng.uniform(0.25, 1.0), rng.uniform(0.18, 0.3), rng.uniform(0.7, 2.2)
    mat = furniture_material(rng, str(rng.choice(["wood", "painted"])))
    return Piece(
        hw, hd, (_box(-hw, hw, 0, h, -hd, hd),), (mat,), top_height=h if h < MAX_TOP_HEIGHT else None
    )


def bed(rng: np.random.Generator) -> Piece:
    """Mattress on a base with a headboard at the back and pillows."""
    hw, hd, h = rng.uniform(0.45, 0.95), rng.uniform(0.95, 1.08), rng.uniform(0.4, 0.6)
    head_h = rng.uniform(0.9, 1.2)
    parts = [
        _box(-hw, hw, 0, h, -hd + 0.08, hd, slot=0),
        _box(-hw, hw, 0, head_h, -hd, -hd + 0.08, slot=1),
    ]
    n_pillows = 1 if hw < 0.6 else 2
    pw = (2 * hw - 0.2) / n_pillows
    for i in range(n_pillows):
        x0 = -hw + 0.1 + i * pw
        parts.append(_box(x0 + 0.03, x0 + pw - 0.03, h, h + 0.12, -hd + 0.12, -hd + 0.5, slot=2))
    mats = (
        furniture_material(rng, "fabric"),
        furniture_material(rng, "wood"),
        furniture_material(rng, "fabric"),
    )
    return Piece(hw, hd, tuple(parts), mats)


def sofa(rng: np.random.Generator) -> Piece:
    """Seat, backrest and two armrests in fabric or leather."""
    hw, hd = rng.uniform(0.7, 1.2), rng.uniform(0.4, 0.48)
    seat, back, arm, arm_w = 0.42, rng.uniform(0.75, 0.9), rng.uniform(0.55, 0.65), 0.18
    parts = (
        _box(-hw + arm_w, hw - arm_w, 0, seat, -hd + 0.2, hd),
        _box(-hw, hw, 0, back, -hd, -hd + 0.2),
        _box(-hw, -hw + arm_w, 0, arm, -hd + 0.2, hd),
        _box(hw - arm_w, hw, 0, arm, -hd + 0.2, hd),
    )
    mat = furniture_material(rng, str(rng.choice(["fabric", "dark"], p=[0.75, 0.25])))
    return Piece(hw, hd, parts, (mat,))


def table(rng: np.random.Generator) -> Piece:
    """Rectangular table or desk: a thin top on four legs."""
    hw, hd, h = rng.uniform(0.4, 0.9), rng.uniform(0.3, 0.5), rng.uniform(0.7, 0.78)
    top = _box(-hw, hw, h - 2 * TOP_HALF_THICKNESS, h, -hd, hd)
    mat = furniture_material(rng, str(rng.choice(["wood", "painted"])))
    legs = _legs(hw, hd, h - 2 * TOP_HALF_THICKNESS, slot=int(rng.integers(0, 2)))
    return Piece(hw, hd, (top, *legs), (mat, furniture_material(rng, "metal")), top_height=h)


def chair(rng: np.random.Generator) -> Piece:
    """Seat on four legs with a backrest."""
    hw, seat = rng.uniform(0.2, 0.25), rng.uniform(0.43, 0.48)
    back = seat + rng.uniform(0.35, 0.5)
    parts = (
        _box(-hw, hw, seat - 0.04, seat, -hw, hw),
        _box(-hw, hw, seat, back, -hw, -hw + 0.04),
        *_legs(hw, hw, seat - 0.04, slot=0),
    )
    return Piece(hw, hw, parts, (furniture_material(rng, str(rng.choice(["wood", "painted"]))),))


def tv_stand(rng: np.random.Generator) -> Piece:
    """Low cabinet with a thin dark screen on top."""
    hw, hd, h = rng.uniform(0.6, 1.0), rng.uniform(0.2, 0.25), rng.uniform(0.4, 0.6)
    sw, sh = min(hw - 0.05, rng.uniform(0.45, 0.7)), rng.uniform(0.5, 0.8)
    parts = (_box(-hw, hw, 0, h, -hd, hd), _box(-sw, sw, h, h + sh, -0.04, 0.03, slot=1))
    mats = (furniture_material(rng, str(rng.choice(["wood", "painted"]))), furniture_material(rng, "dark"))
    return Piece(hw, hd, parts, mats)


def crate(rng: np.random.Generator) -> Piece:
    """A box or ottoman standing on the floor."""
    hw, hd, h = rng.uniform(0.15, 0.4), rng.uniform(0.15, 0.4), rng.uniform(0.25, 0.7)
    mat = furniture_material(rng, str(rng.choice(["wood", "painted", "fabric"])))
    return Piece(hw, hd, (_box(-hw, hw, 0, h, -hd, hd),), (mat,), top_height=h)


def round_table(rng: np.random.Generator) -> Piece:
    """Round top on a central pedestal."""
    r, h = rng.uniform(0.35, 0.6), rng.uniform(0.7, 0.76)
    parts = (Cylinder((0.0, 0.0), r, h - 0.04, h, 0), Cylinder((0.0, 0.0), 0.05, 0.0, h - 0.04, 1))
    mats = (furniture_material(rng, str(rng.choice(["wood", "painted"]))), furniture_material(rng, "metal"))
    return Piece(r, r, parts, mats, top_height=h)


def stool(rng: np.random.Generator) -> Piece:
    """Stool, bin or planter: one short cylinder."""
    r, h = rng.uniform(0.15, 0.3), rng.uniform(0.35, 0.8)
    mat = furniture_material(rng, str(rng.choice(["painted", "metal", "wood"])))
    return Piece(r, r, (Cylinder((0.0, 0.0), r, 0.0, h, 0),), (mat,))


def floor_lamp(rng: np.random.Generator) -> Piece:
    """Thin pole with a cylindrical shade."""
    r, h = rng.uniform(0.15, 0.25), rng.uniform(1.3, 1.7)
    parts = (Cylinder((0.0, 0.0), 0.015, 0.0, h, 0), Cylinder((0.0, 0.0), r, h, h + 0.3, 1))
    return Piece(r, r, parts, (furniture_material(rng, "metal"), furniture_material(rng, "fabric")))


def ball(rng: np.random.Generator) -> Piece:
    """A ball or pouf resting on the floor."""
    r = rng.uniform(0.1, 0.35)
    mat = furniture_material(rng, str(rng.choice(["painted", "fabric"])))
    return Piece(r, r, (Sphere((0.0, r, 0.0), r, 0),), (mat,))


def small_object(rng: np.random.Generator, height: float) -> Piece:
    """A vase, globe or box to stand on a top at ``height`` metres."""
    kind = rng.choice(["vase", "globe", "box"])
    mat = furniture_material(rng, str(rng.choice(["painted", "metal", "dark", "wood"])))
    if kind == "vase":
        r = rng.uniform(0.04, 0.12)
        return Piece(r, r, (Cylinder((0.0, 0.0), r, height, height + rng.uniform(0.15, 0.4), 0),), (mat,))
    if kind == "globe":
        r = rng.uniform(0.06, 0.15)
        return Piece(r, r, (Sphere((0.0, height + r, 0.0), r, 0),), (mat,))
    hw, hd = rng.uniform(0.05, 0.18), rng.uniform(0.05, 0.15)
    return Piece(hw, hd, (_box(-hw, hw, height, height + rng.uniform(0.05, 0.3), -hd, hd),), (mat,))


Template = Callable[[np.random.Generator], Piece]
# A template listed twice is drawn twice as often.
WALL_PIECES: tuple[Template, ...] = (cabinet, bed, sofa, table, tv_stand, cabinet)
FREE_PIECES: tuple[Template, ...] = (table, chair, crate, round_table, stool, floor_lamp, ball, chair)


def place(piece: Piece, x: float, z: float, yaw: float, material_offset: int) -> list[Shape]:
    """World shapes of ``piece`` with its footprint centre at ``(x, z)``.

    Args:
        piece: The piece in its local frame.
        x: Footprint centre ``x`` in metres; ``z`` likewise.
        yaw: Rotation about ``+y`` in radians (local ``+z`` becomes ``(sin, 0, cos)``).
        material_offset: Scene index of the piece's first material.

    Returns:
        The parts as world shapes with scene material indices.
    """
    c, s = math.cos(yaw), math.sin(yaw)

    def to_world(lx: float, lz: float) -> tuple[float, float]:
        return x + c * lx + s * lz, z - s * lx + c * lz

    shapes: list[Shape] = []
    for part in piece.parts:
        material = part.material + material_offset
        if isinstance(part, Box):
            wx, wz = to_world(part.center[0], part.center[2])
            shapes.append(Box((wx, part.center[1], wz), part.half, yaw + part.yaw, material))
        elif isinstance(part, Cylinder):
            shapes.append(dataclasses.replace(part, center=to_world(*part.center), material=material))
        else:
            wx, wz = to_world(part.center[0], part.center[2])
            shapes.append(Sphere((wx, part.center[1], wz), part.radius, material))
    return shapes

"""Ray intersection and surface geometry of the renderer's shapes (numpy, vectorised).

Every shape answers two questions for arrays of rays or points:

- ``intersect(ox, oy, oz, dx, dy, dz)``: the ray parameter ``t`` of the first hit in
  front of the origin (``inf`` where the ray misses). Origins are scalars (primary
  rays from the camera) or arrays (shadow rays from surface points); directions are
  arrays of any shape and need not be normalised. All arrays are float32.
- ``surface(px, py, pz)``: for hit points on the shape, shape (N,), the outward unit
  normal and 2-D texture coordinates in metres measured on the surface itself, so
  that textures keep their physical size and shrink with distance.

Shapes stand upright: boxes turn about the vertical axis only, cylinders are vertical.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MIN_HIT_T = 1e-4  # hits closer than this ray parameter are ignored (self-intersection)
CAP_RADIUS_FRACTION = 0.999  # points nearer the axis than this fraction of the radius are on a cap


@dataclass
class SurfacePatch:
    """Geometry of N surface points.

    Attributes:
        normal: Outward unit normals ``(nx, ny, nz)``, each shape (N,).
        uv: Texture coordinates in metres ``(u, v)``, each shape (N,).
    """

    normal: tuple[np.ndarray, np.ndarray, np.ndarray]
    uv: tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Box:
    """A box standing upright, turned by ``yaw`` about the vertical axis.

    Attributes:
        center: Centre ``(x, y, z)`` in metres.
        half: Half extents along the box's own ``(x, y, z)`` axes in metres.
        yaw: Rotation about ``+y`` in radians; local ``x`` is world ``(cos, 0, -sin)``.
        material: Index into the scene's materials.
    """

    center: tuple[float, float, float]
    half: tuple[float, float, float]
    yaw: float
    material: int

    def _to_local(self, x, y, z):
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return c * x - s * z, y, s * x + c * z

    def intersect(self, ox, oy, oz, dx, dy, dz) -> np.ndarray:
        """First hit ``t`` of each ray (slab test in the box frame); ``inf`` on a miss."""
        lo = self._to_local(ox - self.center[0], oy - self.center[1], oz - self.center[2])
        ld = self._to_local(dx, dy, dz)
        near = far = None
        with np.errstate(divide="ignore", invalid="ignore"):
            for o, d, h in zip(lo, ld, self.half, strict=True):
                inv = 1.0 / d
                t1 = (-h - o) * inv
                t2 = (h - o) * inv
                lo_t, hi_t = np.minimum(t1, t2), np.maximum(t1, t2)
                near = lo_t if near is None else np.maximum(near, lo_t)
                far = hi_t if far is None else np.minimum(far, hi_t)
            hit = (near <= far) & (near > MIN_HIT_T)
        return np.where(hit, near, np.float32(np.inf))

    def surface(self, px, py, pz) -> SurfacePatch:
        """Normals and face-aligned texture coordinates of points on the box."""
        local = self._to_local(px - self.center[0], py - self.center[1], pz - self.center[2])
        rel = np.stack([np.abs(p) / h for p, h in zip(local, self.half, strict=True)])
        axis = np.argmax(rel, axis=0)
        lx, ly, lz = local
        sign = np.sign(np.choose(axis, local)).astype(np.float32)
        nlx = np.where(axis == 0, sign, 0.0)
        nly = np.where(axis == 1, sign, 0.0)
        nlz = np.where(axis == 2, sign, 0.0)
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        normal = (c * nlx + s * nlz, nly, c * nlz - s * nlx)
        u = np.where(axis == 0, lz, lx)
        v = np.where(axis == 1, lz, ly)
        return SurfacePatch(normal=normal, uv=(u, v))

    def corners(self) -> np.ndarray:
        """The 8 corners in world coordinates, shape (8, 3), metres."""
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
        local = signs * np.asarray(self.half)
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        world_x = c * local[:, 0] + s * local[:, 2]
        world_z = -s * local[:, 0] + c * local[:, 2]
        return np.stack([world_x, local[:, 1], world_z], axis=1) + np.asarray(self.center)

    def bounding_sphere(self) -> tuple[np.ndarray, float]:
        """Centre (3,) and radius (metres) of a sphere enclosing the box."""
        return np.asarray(self.center, dtype=np.float32), float(np.linalg.norm(self.half))


@dataclass(frozen=True)
class Cylinder:
    """A vertical cylinder with flat caps.

    Attributes:
        center: Axis position ``(x, z)`` in metres.
        radius: Radius in metres.
        y0: Bottom height in metres.
        y1: Top height in metres.
        material: Index into the scene's materials.
    """

    center: tuple[float, float]
    radius: float
    y0: float
    y1: float
    material: int

    def intersect(self, ox, oy, oz, dx, dy, dz) -> np.ndarray:
        """First hit ``t`` on the side or a cap of each ray; ``inf`` on a miss."""
        px, pz = ox - self.center[0], oz - self.center[1]
        r2 = self.radius * self.radius
        inf = np.float32(np.inf)
        with np.errstate(divide="ignore", invalid="ignore"):
            a = dx * dx + dz * dz
            b = px * dx + pz * dz
            disc = b * b - a * (px * px + pz * pz - r2)
            t_side = (-b - np.sqrt(disc)) / a
            y = oy + t_side * dy
            side_ok = (t_side > MIN_HIT_T) & (y >= self.y0) & (y <= self.y1)
            cap_y = np.where(oy > self.y1, np.float32(self.y1), np.float32(self.y0))
            t_cap = (cap_y - oy) / dy
            cx, cz = px + t_cap * dx, pz + t_cap * dz
            cap_ok = (t_cap > MIN_HIT_T) & (cx * cx + cz * cz <= r2)
        return np.minimum(np.where(side_ok, t_side, inf), np.where(cap_ok, t_cap, inf))

    def surface(self, px, py, pz) -> SurfacePatch:
        """Normals; caps are textured in ``(x, z)``, the side by arc length and height."""
        rx, rz = px - self.center[0], pz - self.center[1]
        on_cap = rx * rx + rz * rz < (self.radius * CAP_RADIUS_FRACTION) ** 2
        top = py > 0.5 * (self.y0 + self.y1)
        inv_r = 1.0 / self.radius
        nx = np.where(on_cap, 0.0, rx * inv_r)
        ny = np.where(on_cap, np.where(top, np.float32(1.0), np.float32(-1.0)), 0.0)
        nz = np.where(on_cap, 0.0, rz * inv_r)
        arc = np.arctan2(rz, rx) * self.radius
        return SurfacePatch(normal=(nx, ny, nz), uv=(np.where(on_cap, rx, arc), np.where(on_cap, rz, py)))

    def corners(self) -> np.ndarray:
        """The 8 corners of the bounding box in world coordinates, shape (8, 3), metres."""
        r = self.radius
        return np.array(
            [
                [self.center[0] + sx * r, y, self.center[1] + sz * r]
                for sx in (-1, 1)
                for y in (self.y0, self.y1)
                for sz in (-1, 1)
            ]
        )

    def bounding_sphere(self) -> tuple[np.ndarray, float]:
        """Centre (3,) and radius (metres) of a sphere enclosing the cylinder."""
        half_h = 0.5 * (self.y1 - self.y0)
        centre = np.array([self.center[0], self.y0 + half_h, self.center[1]], dtype=np.float32)
        return centre, math.hypot(self.radius, half_h)


@dataclass(frozen=True)
class Sphere:
    """A sphere.

    Attributes:
        center: Centre ``(x, y, z)`` in metres.
        radius: Radius in metres.
        material: Index into the scene's materials.
    """

    center: tuple[float, float, float]
    radius: float
    material: int

    def intersect(self, ox, oy, oz, dx, dy, dz) -> np.ndarray:
        """First hit ``t`` of each ray; ``inf`` on a miss."""
        px, py, pz = ox - self.center[0], oy - self.center[1], oz - self.center[2]
        with np.errstate(invalid="ignore"):
            a = dx * dx + dy * dy + dz * dz
            b = px * dx + py * dy + pz * dz
            disc = b * b - a * (px * px + py * py + pz * pz - self.radius * self.radius)
            t = (-b - np.sqrt(disc)) / a
            hit = t > MIN_HIT_T
        return np.where(hit, t, np.float32(np.inf))

    def surface(self, px, py, pz) -> SurfacePatch:
        """Radial normals; texture by longitude arc length and height."""
        inv_r = 1.0 / self.radius
        nx = (px - self.center[0]) * inv_r
        ny = (py - self.center[1]) * inv_r
        nz = (pz - self.center[2]) * inv_r
        return SurfacePatch(normal=(nx, ny, nz), uv=(np.arctan2(nz, nx) * self.radius, py))

    def corners(self) -> np.ndarray:
        """The 8 corners of the bounding box in world coordinates, shape (8, 3), metres."""
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
        return np.asarray(self.center) + self.radius * signs

    def bounding_sphere(self) -> tuple[np.ndarray, float]:
        """Centre (3,) and radius (metres): the sphere itself."""
        return np.asarray(self.center, dtype=np.float32), self.radius


Shape = Box | Cylinder | Sphere


# Faces of the room, which are also the first surface ids of a rendered scene.
FLOOR, CEILING, WALL_X0, WALL_X1, WALL_Z0, WALL_Z1 = range(6)
NUM_ROOM_FACES = 6
WALL_FACES = (WALL_X0, WALL_X1, WALL_Z0, WALL_Z1)
_ROOM_NORMALS = {
    FLOOR: (0.0, 1.0, 0.0),
    CEILING: (0.0, -1.0, 0.0),
    WALL_X0: (1.0, 0.0, 0.0),
    WALL_X1: (-1.0, 0.0, 0.0),
    WALL_Z0: (0.0, 0.0, 1.0),
    WALL_Z1: (0.0, 0.0, -1.0),
}


@dataclass(frozen=True)
class Room:
    """The empty box room seen from inside: ``[0, width] x [0, height] x [0, depth]``.

    Attributes:
        width: Extent along ``x`` in metres.
        height: Floor-to-ceiling height in metres.
        depth: Extent along ``z`` in metres.
    """

    width: float
    height: float
    depth: float

    def intersect(self, ox: float, oy: float, oz: float, dx, dy, dz) -> tuple[np.ndarray, np.ndarray]:
        """Exit point of rays starting inside the room.

        Args:
            ox: Origin ``x`` in metres (inside the room); likewise ``oy``, ``oz``.
            dx: Ray direction ``x`` components, any shape; likewise ``dy``, ``dz``.

        Returns:
            ``(t, face)``: float32 ray parameter of the hit and int16 face id
            (``FLOOR`` ... ``WALL_Z1``), both the shape of ``dx``.
        """
        # The wall ahead on each axis; abs() turns the +-inf of a zero component into +inf.
        with np.errstate(divide="ignore"):
            tx = np.abs((np.where(dx > 0, np.float32(self.width), np.float32(0.0)) - ox) / dx)
            ty = np.abs((np.where(dy > 0, np.float32(self.height), np.float32(0.0)) - oy) / dy)
            tz = np.abs((np.where(dz > 0, np.float32(self.depth), np.float32(0.0)) - oz) / dz)
        t = np.minimum(np.minimum(tx, ty), tz)
        face = np.where(dz > 0, np.int16(WALL_Z1), np.int16(WALL_Z0))
        np.copyto(face, np.where(dx > 0, np.int16(WALL_X1), np.int16(WALL_X0)), where=t == tx)
        np.copyto(face, np.where(dy > 0, np.int16(CEILING), np.int16(FLOOR)), where=t == ty)
        return t, face

    def surface(self, face: int, px, py, pz) -> SurfacePatch:
        """Inward normal of ``face`` and texture coordinates: ``(x, z)`` on floor and
        ceiling, ``(horizontal, y)`` on walls, in metres."""
        n = np.ones_like(px)
        normal = tuple(n * c for c in _ROOM_NORMALS[face])
        if face in (FLOOR, CEILING):
            uv = (px, pz)
        elif face in (WALL_X0, WALL_X1):
            uv = (pz, py)
        else:
            uv = (px, py)
        return SurfacePatch(normal=normal, uv=uv)

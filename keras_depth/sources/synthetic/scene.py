"""Random indoor scenes: a box room, a camera, furniture, wall decorations and lights.

Everything here is drawn from one ``numpy.random.Generator``, so a scene is a pure
function of the generator's seed. Sizes follow real living rooms, bedrooms and
offices as seen by a hand-held Kinect in NYU Depth v2: the camera is held at chest
to head height near one wall and looks into the room. A fraction of the scenes
(``close_view_fraction``, 0 by default) are close views instead, as hand-held footage of
kitchens and desks has them (Microsoft 7-Scenes): a table stands just in front of the camera,
cluttered with small objects, and the camera looks down at it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from keras_depth.sources.synthetic import furniture, materials
from keras_depth.sources.synthetic.camera import Camera
from keras_depth.sources.synthetic.materials import Material
from keras_depth.sources.synthetic.primitives import (
    CEILING,
    FLOOR,
    NUM_ROOM_FACES,
    WALL_FACES,
    WALL_X0,
    WALL_X1,
    WALL_Z0,
    WALL_Z1,
    Room,
    Shape,
)

ROOM_WIDTH_RANGE = (3.0, 8.0)  # metres along x
ROOM_DEPTH_RANGE = (3.0, 10.0)  # metres along z
ROOM_HEIGHT_RANGE = (2.4, 3.2)  # metres
CAMERA_HEIGHT_RANGE = (1.0, 1.8)  # metres above the floor
CAMERA_WALL_DISTANCE_RANGE = (0.3, 1.5)  # metres in front of the wall behind the camera
CAMERA_SIDE_MARGIN = 0.4  # metres from the side walls
CAMERA_YAW_SPREAD = math.radians(40.0)  # heading spread about the room-facing direction
CAMERA_PITCH_RANGE = (math.radians(-22.0), math.radians(3.0))  # mostly looking down a little
CAMERA_ROLL_MAX = math.radians(3.0)
MIN_VIEW_DISTANCE = 2.0  # metres to the wall straight ahead of the camera (when possible)
CAMERA_KEEP_OUT = 0.5  # half size in metres of the floor square around the camera kept free
WALL_PIECES_RANGE = (3, 6)  # pieces against the walls (inclusive)
BEHIND_CAMERA_WALL_WEIGHT = 0.1  # relative chance of a wall piece on the wall behind the camera
FREE_PIECES_RANGE = (2, 5)  # pieces standing in front of the camera (inclusive)
FREE_DISTANCE_RANGE = (1.0, 5.0)  # metres from the camera
FREE_HALF_ANGLE = 0.5  # radians either side of the camera heading
ALIGNED_FREE_PIECE_PROBABILITY = 0.5  # free pieces parallel to the walls
SMALL_OBJECT_PROBABILITY = 0.5  # per flat top
PLACEMENT_TRIES = 20
PLACEMENT_GAP = 0.05  # metres kept between footprints
WALL_GAP = 0.01  # metres between a wall and a piece backed onto it
MAX_WINDOWS, MAX_DOORS, MAX_PICTURES = 2, 1, 3
WINDOW_WIDTH_RANGE = (0.8, 2.0)  # metres
WINDOW_SIDE_MARGIN = 0.3  # metres from the wall's ends
WINDOW_SILL_RANGE = (0.7, 1.0)  # metres above the floor
WINDOW_HEIGHT_RANGE = (1.0, 1.6)  # metres
WINDOW_TOP_MARGIN = 0.15  # metres below the ceiling
WINDOW_FRAME = 0.06  # metres, frame and bar width
DOOR_WIDTH_RANGE = (0.8, 0.95)  # metres
DOOR_HEIGHT_RANGE = (2.0, 2.1)  # metres
DOOR_SIDE_MARGIN = 0.2  # metres from the wall's ends (doors and pictures)
DOOR_FRAME = 0.05  # metres
PICTURE_WIDTH_RANGE = (0.3, 1.0)  # metres
PICTURE_HEIGHT_RANGE = (0.3, 0.8)  # metres
PICTURE_CENTRE_HEIGHT_RANGE = (1.3, 1.7)  # metres above the floor
PICTURE_FRAME = 0.03  # metres
ACCENT_WALL_PROBABILITY = 0.3
SECOND_LIGHT_PROBABILITY = 0.5
SECOND_LIGHT_POWER_RATIO = (0.3, 0.8)  # of the first light's power
LIGHT_WALL_MARGIN = 0.5  # metres
LIGHT_GREEN_RANGE = (0.85, 1.0)  # light tint relative to red: warm white to neutral
LIGHT_BLUE_RANGE = (0.65, 1.0)
LIGHT_POWER_RANGE = (4.0, 8.0)  # irradiance units at 1 m
LIGHT_CEILING_DROP_RANGE = (0.2, 0.6)  # metres from the ceiling down to a light
AMBIENT_RANGE = (0.12, 0.35)  # irradiance units
CLOSE_VIEW_RECTANGULAR_PROBABILITY = 0.6  # else a round table
CLOSE_VIEW_GAP_RANGE = (0.25, 0.6)  # metres from the camera to the table's near edge
CLOSE_VIEW_HALF_ANGLE = 0.15  # radians either side of the camera heading
CLOSE_VIEW_AIM_RANGE = (-0.1, 0.3)  # radians above the line of sight to the table's centre
CLOSE_VIEW_OBJECTS_RANGE = (1, 4)  # small objects on the table (inclusive)


@dataclass(frozen=True)
class Light:
    """A point light.

    Attributes:
        position: ``(x, y, z)`` in metres.
        colour: Linear-RGB tint, max channel 1.
        power: Irradiance at 1 m (arbitrary units; the image is auto-exposed).
    """

    position: tuple[float, float, float]
    colour: tuple[float, float, float]
    power: float


@dataclass(frozen=True)
class Decoration:
    """A flat rectangle on a wall: window, door or picture.

    Attributes:
        face: Wall face id (``WALL_X0`` ... ``WALL_Z1``).
        rect: ``(u0, u1, v0, v1)`` in the wall's texture coordinates (metres along
            the wall, metres above the floor).
        material: Scene material index of the inside.
        frame_material: Scene material index of the border (and window bars).
        frame_width: Border width in metres.
        cross_bars: Draw a window's vertical and horizontal middle bars.
    """

    face: int
    rect: tuple[float, float, float, float]
    material: int
    frame_material: int
    frame_width: float
    cross_bars: bool


@dataclass(frozen=True)
class Scene:
    """Everything the renderer needs.

    Attributes:
        room: The room box.
        camera: Camera pose.
        lights: Point lights (the first, the brightest, casts shadows).
        ambient: Ambient irradiance (same units as light power).
        materials: All materials; shapes and faces refer to them by index.
        room_materials: Material index of each room face, indexed by face id.
        shapes: Furniture and objects.
        shape_groups: ``(start, end)`` ranges of ``shapes`` that make one piece of
            furniture (for culling shadow tests piece by piece).
        decorations: Windows, doors and pictures.
    """

    room: Room
    camera: Camera
    lights: tuple[Light, ...]
    ambient: float
    materials: tuple[Material, ...]
    room_materials: tuple[int, ...]
    shapes: tuple[Shape, ...]
    shape_groups: tuple[tuple[int, int], ...]
    decorations: tuple[Decoration, ...]


def wall_length(room: Room, face: int) -> float:
    """Horizontal length in metres of a wall (its texture ``u`` range)."""
    return room.depth if face in (WALL_X0, WALL_X1) else room.width


def _facing_wall_pose(room: Room, face: int, along: float, offset: float) -> tuple[float, float, float]:
    """``(x, z, yaw)`` of a point ``offset`` metres in front of a wall, ``along`` metres
    along it, facing into the room."""
    if face == WALL_Z0:
        return along, offset, 0.0
    if face == WALL_Z1:
        return along, room.depth - offset, math.pi
    if face == WALL_X0:
        return offset, along, math.pi / 2
    return room.width - offset, along, -math.pi / 2


class _Layout:
    """Axis-aligned footprints already taken on the floor."""

    def __init__(self, room: Room) -> None:
        self.room = room
        self.taken: list[tuple[float, float, float, float]] = []

    def try_take(self, x: float, z: float, half_x: float, half_z: float) -> bool:
        box = (x - half_x, x + half_x, z - half_z, z + half_z)
        if box[0] < 0 or box[2] < 0 or box[1] > self.room.width or box[3] > self.room.depth:
            return False
        g = PLACEMENT_GAP
        for t in self.taken:
            if box[0] < t[1] + g and t[0] < box[1] + g and box[2] < t[3] + g and t[2] < box[3] + g:
                return False
        self.taken.append(box)
        return True


def _footprint(piece: furniture.Piece, yaw: float) -> tuple[float, float]:
    c, s = abs(math.cos(yaw)), abs(math.sin(yaw))
    return c * piece.half_width + s * piece.half_depth, s * piece.half_width + c * piece.half_depth


def _view_distance(room: Room, x: float, z: float, yaw: float) -> float:
    """Horizontal distance in metres from ``(x, z)`` to the wall straight ahead at heading ``yaw``."""
    heading = np.array([[math.sin(yaw), 0.0, math.cos(yaw)]], dtype=np.float32).T
    t, _ = room.intersect(x, 0.5 * room.height, z, *heading)
    return float(t[0])


def _sample_camera(rng: np.random.Generator, room: Room) -> tuple[Camera, int]:
    """A camera in front of a random wall, looking into the room; returns it and that wall.

    Headings that face a wall closer than ``MIN_VIEW_DISTANCE`` are redrawn, so the
    view is into the room rather than at a wall in front of the lens.
    """
    face = int(rng.choice(WALL_FACES))
    across = room.width if face in (WALL_X0, WALL_X1) else room.depth
    offset = rng.uniform(CAMERA_WALL_DISTANCE_RANGE[0], min(CAMERA_WALL_DISTANCE_RANGE[1], across / 2))
    along = rng.uniform(CAMERA_SIDE_MARGIN, wall_length(room, face) - CAMERA_SIDE_MARGIN)
    x, z, facing = _facing_wall_pose(room, face, along, offset)
    for _ in range(PLACEMENT_TRIES):
        yaw = facing + rng.uniform(-CAMERA_YAW_SPREAD, CAMERA_YAW_SPREAD)
        if _view_distance(room, x, z, yaw) >= MIN_VIEW_DISTANCE:
            break
    else:
        yaw = facing  # straight into the room: at least ``across - offset`` >= 1.5 m away
    camera = Camera(
        position=(x, rng.uniform(*CAMERA_HEIGHT_RANGE), z),
        yaw=yaw,
        pitch=rng.uniform(*CAMERA_PITCH_RANGE),
        roll=rng.uniform(-CAMERA_ROLL_MAX, CAMERA_ROLL_MAX),
    )
    return camera, face


class _SceneBuilder:
    """Accumulates materials and shapes while pieces are placed."""

    def __init__(self, rng: np.random.Generator, room: Room, camera: Camera, back_wall: int) -> None:
        self.rng = rng
        self.room = room
        self.camera = camera
        # Most wall pieces go where the camera can see them.
        self.wall_weights = np.array(
            [BEHIND_CAMERA_WALL_WEIGHT if f == back_wall else 1.0 for f in WALL_FACES]
        )
        self.wall_weights /= self.wall_weights.sum()
        self.materials: list[Material] = []
        self.shapes: list[Shape] = []
        self.groups: list[tuple[int, int]] = []
        self.layout = _Layout(room)
        cx, _, cz = camera.position
        self.layout.taken.append(
            (cx - CAMERA_KEEP_OUT, cx + CAMERA_KEEP_OUT, cz - CAMERA_KEEP_OUT, cz + CAMERA_KEEP_OUT)
        )

    def add_material(self, material: Material) -> int:
        self.materials.append(material)
        return len(self.materials) - 1

    def add_piece(
        self, piece: furniture.Piece, x: float, z: float, yaw: float, objects: int | None = None
    ) -> None:
        """Adds a piece at ``(x, z)`` and ``objects`` small objects on its flat top (None: one with
        probability ``SMALL_OBJECT_PROBABILITY``)."""
        offset, first = len(self.materials), len(self.shapes)
        self.materials.extend(piece.materials)
        self.shapes.extend(furniture.place(piece, x, z, yaw, offset))
        self.groups.append((first, len(self.shapes)))
        if piece.top_height is None:
            return
        if objects is None:
            objects = int(self.rng.random() < SMALL_OBJECT_PROBABILITY)
        for _ in range(objects):
            self.add_small_object(piece, x, z, yaw)

    def add_small_object(self, piece: furniture.Piece, x: float, z: float, yaw: float) -> None:
        """Stands a small object at a random place on the flat top of ``piece`` (placed at ``(x, z)``)."""
        item = furniture.small_object(self.rng, piece.top_height)
        # Keep the item inside the top (conservatively: inside the square inscribed in a round top).
        free_x = max(0.0, piece.half_width / math.sqrt(2) - item.half_width)
        free_z = max(0.0, piece.half_depth / math.sqrt(2) - item.half_depth)
        lx, lz = self.rng.uniform(-free_x, free_x), self.rng.uniform(-free_z, free_z)
        c, s = math.cos(yaw), math.sin(yaw)
        item_yaw = yaw + self.rng.uniform(-0.5, 0.5)
        self.add_piece(item, x + c * lx + s * lz, z - s * lx + c * lz, item_yaw, objects=0)

    def place_close_view(self, piece: furniture.Piece) -> Camera:
        """Stands ``piece`` (a table) just in front of the camera, cluttered with small objects, and
        aims the camera down at it (dropped after ``PLACEMENT_TRIES`` misses).

        Returns:
            The camera, re-aimed when the table was placed.
        """
        cx, cy, cz = self.camera.position
        for _ in range(PLACEMENT_TRIES):
            distance = piece.half_depth + self.rng.uniform(*CLOSE_VIEW_GAP_RANGE)
            heading = self.camera.yaw + self.rng.uniform(-CLOSE_VIEW_HALF_ANGLE, CLOSE_VIEW_HALF_ANGLE)
            x, z = cx + distance * math.sin(heading), cz + distance * math.cos(heading)
            inside_room = _Layout(self.room)  # the camera's keep-out square does not apply to this table
            if not inside_room.try_take(x, z, *_footprint(piece, heading)):
                continue
            self.layout.taken += inside_room.taken
            objects = int(self.rng.integers(CLOSE_VIEW_OBJECTS_RANGE[0], CLOSE_VIEW_OBJECTS_RANGE[1] + 1))
            self.add_piece(piece, x, z, heading, objects=objects)
            aim = -math.atan2(cy - piece.top_height, distance) + self.rng.uniform(*CLOSE_VIEW_AIM_RANGE)
            self.camera = dataclasses.replace(self.camera, pitch=min(aim, 0.0))
            break
        return self.camera

    def place_against_wall(self, piece: furniture.Piece) -> None:
        """Backs ``piece`` onto a wall where it fits (dropped after ``PLACEMENT_TRIES`` misses)."""
        for _ in range(PLACEMENT_TRIES):
            face = int(self.rng.choice(WALL_FACES, p=self.wall_weights))
            length = wall_length(self.room, face)
            if length < 2 * piece.half_width:
                continue
            along = self.rng.uniform(piece.half_width, length - piece.half_width)
            x, z, yaw = _facing_wall_pose(self.room, face, along, piece.half_depth + WALL_GAP)
            if self.layout.try_take(x, z, *_footprint(piece, yaw)):
                self.add_piece(piece, x, z, yaw)
                return

    def place_in_view(self, piece: furniture.Piece) -> None:
        """Stands ``piece`` in front of the camera where it fits (dropped after ``PLACEMENT_TRIES`` misses)."""
        cx, _, cz = self.camera.position
        for _ in range(PLACEMENT_TRIES):
            distance = self.rng.uniform(*FREE_DISTANCE_RANGE)
            heading = self.camera.yaw + self.rng.uniform(-FREE_HALF_ANGLE, FREE_HALF_ANGLE)
            x, z = cx + distance * math.sin(heading), cz + distance * math.cos(heading)
            if self.rng.random() < ALIGNED_FREE_PIECE_PROBABILITY:
                yaw = math.pi / 2 * int(self.rng.integers(0, 4)) + self.rng.uniform(-0.1, 0.1)
            else:
                yaw = self.rng.uniform(0.0, 2 * math.pi)
            if self.layout.try_take(x, z, *_footprint(piece, yaw)):
                self.add_piece(piece, x, z, yaw)
                return


def _sample_decorations(rng: np.random.Generator, room: Room, builder: _SceneBuilder) -> list[Decoration]:
    """Windows (bright glass with bars), doors and framed pictures on random walls."""
    decorations = []
    frame = builder.add_material(materials.furniture_material(rng, "painted"))
    for _ in range(int(rng.integers(0, MAX_WINDOWS + 1))):
        face = int(rng.choice(WALL_FACES))
        length = wall_length(room, face)
        width = rng.uniform(
            WINDOW_WIDTH_RANGE[0], min(WINDOW_WIDTH_RANGE[1], length - 2 * WINDOW_SIDE_MARGIN)
        )
        u0 = rng.uniform(WINDOW_SIDE_MARGIN, length - WINDOW_SIDE_MARGIN - width)
        v0 = rng.uniform(*WINDOW_SILL_RANGE)
        v1 = min(room.height - WINDOW_TOP_MARGIN, v0 + rng.uniform(*WINDOW_HEIGHT_RANGE))
        glass = builder.add_material(materials.window_material(rng))
        decorations.append(Decoration(face, (u0, u0 + width, v0, v1), glass, frame, WINDOW_FRAME, True))
    for _ in range(int(rng.integers(0, MAX_DOORS + 1))):
        face = int(rng.choice(WALL_FACES))
        width = rng.uniform(*DOOR_WIDTH_RANGE)
        u0 = rng.uniform(DOOR_SIDE_MARGIN, wall_length(room, face) - DOOR_SIDE_MARGIN - width)
        door = builder.add_material(materials.furniture_material(rng, str(rng.choice(["wood", "painted"]))))
        rect = (u0, u0 + width, 0.0, rng.uniform(*DOOR_HEIGHT_RANGE))
        decorations.append(Decoration(face, rect, door, frame, DOOR_FRAME, False))
    for _ in range(int(rng.integers(0, MAX_PICTURES + 1))):
        face = int(rng.choice(WALL_FACES))
        width, height = rng.uniform(*PICTURE_WIDTH_RANGE), rng.uniform(*PICTURE_HEIGHT_RANGE)
        u0 = rng.uniform(DOOR_SIDE_MARGIN, wall_length(room, face) - DOOR_SIDE_MARGIN - width)
        v0 = rng.uniform(*PICTURE_CENTRE_HEIGHT_RANGE) - height / 2
        picture = builder.add_material(materials.picture_material(rng))
        border = builder.add_material(materials.furniture_material(rng, str(rng.choice(["wood", "dark"]))))
        decorations.append(
            Decoration(face, (u0, u0 + width, v0, v0 + height), picture, border, PICTURE_FRAME, False)
        )
    return decorations


def _sample_lights(rng: np.random.Generator, room: Room) -> tuple[Light, ...]:
    """One or two warm-to-neutral point lights hanging below the ceiling."""
    count = 2 if rng.random() < SECOND_LIGHT_PROBABILITY else 1
    lights = []
    for i in range(count):
        position = (
            rng.uniform(LIGHT_WALL_MARGIN, room.width - LIGHT_WALL_MARGIN),
            room.height - rng.uniform(*LIGHT_CEILING_DROP_RANGE),
            rng.uniform(LIGHT_WALL_MARGIN, room.depth - LIGHT_WALL_MARGIN),
        )
        colour = (1.0, rng.uniform(*LIGHT_GREEN_RANGE), rng.uniform(*LIGHT_BLUE_RANGE))
        power = rng.uniform(*LIGHT_POWER_RANGE) * (1.0 if i == 0 else rng.uniform(*SECOND_LIGHT_POWER_RATIO))
        lights.append(Light(position, colour, power))
    return tuple(lights)


def sample_scene(rng: np.random.Generator, close_view_fraction: float = 0.0) -> Scene:
    """Draws one random furnished room and a camera inside it.

    Args:
        rng: The scene's random generator (consumed).
        close_view_fraction: Probability of a close view (the module docstring); with 0 nothing is
            drawn for it, so the scenes are those of earlier versions.

    Returns:
        The scene.
    """
    room = Room(
        width=rng.uniform(*ROOM_WIDTH_RANGE),
        height=rng.uniform(*ROOM_HEIGHT_RANGE),
        depth=rng.uniform(*ROOM_DEPTH_RANGE),
    )
    camera, back_wall = _sample_camera(rng, room)
    builder = _SceneBuilder(rng, room, camera, back_wall)
    if close_view_fraction > 0 and rng.random() < close_view_fraction:
        template = (
            furniture.table if rng.random() < CLOSE_VIEW_RECTANGULAR_PROBABILITY else furniture.round_table
        )
        camera = builder.place_close_view(template(rng))
    floor = builder.add_material(materials.floor_material(rng))
    ceiling = builder.add_material(materials.ceiling_material(rng))
    wall = builder.add_material(materials.wall_material(rng))
    room_materials = [wall] * NUM_ROOM_FACES
    room_materials[FLOOR] = floor
    room_materials[CEILING] = ceiling
    if rng.random() < ACCENT_WALL_PROBABILITY:
        room_materials[int(rng.choice(WALL_FACES))] = builder.add_material(materials.wall_material(rng))
    decorations = _sample_decorations(rng, room, builder)
    for _ in range(int(rng.integers(WALL_PIECES_RANGE[0], WALL_PIECES_RANGE[1] + 1))):
        template = furniture.WALL_PIECES[int(rng.integers(len(furniture.WALL_PIECES)))]
        builder.place_against_wall(template(rng))
    for _ in range(int(rng.integers(FREE_PIECES_RANGE[0], FREE_PIECES_RANGE[1] + 1))):
        template = furniture.FREE_PIECES[int(rng.integers(len(furniture.FREE_PIECES)))]
        builder.place_in_view(template(rng))
    return Scene(
        room=room,
        camera=camera,
        lights=_sample_lights(rng, room),
        ambient=rng.uniform(*AMBIENT_RANGE),
        materials=tuple(builder.materials),
        room_materials=tuple(room_materials),
        shapes=tuple(builder.shapes),
        shape_groups=tuple(builder.groups),
        decorations=tuple(decorations),
    )

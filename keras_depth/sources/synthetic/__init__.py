"""Procedural indoor RGB-D scenes rendered by numpy ray casting (no TensorFlow).

Modules, in rendering order: ``scene`` (random rooms, furniture from
``furniture``, materials from ``materials``), ``camera`` (NYU-like pinhole rays),
``raycast`` and ``primitives`` (visibility), ``textures`` (world-space patterns),
``shading`` (lights and shadows), ``sensor`` (image formation and Kinect-like
depth holes), and ``render`` which runs them in order.
"""

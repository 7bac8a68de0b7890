"""Dataset sources: the built-in synthetic renderer and user RGB-D folders."""

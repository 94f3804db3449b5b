"""The DaVinci Resolve plug-in: Workspace > Scripts > Utility > RVM Render Matte (see resolve_matte)."""

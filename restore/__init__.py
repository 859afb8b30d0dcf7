"""Restore: catalog of what is stored, verification, planning and replay."""

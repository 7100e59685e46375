"""Patches that Olive loads by file path as a pass's `user_script`, in its own process."""

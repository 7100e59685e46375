"""The Olive side: the only code that imports olive; check, run, progress, patches."""

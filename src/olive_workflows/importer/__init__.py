"""Olive workflow config -> recipe, with every difference of the round trip listed up front."""

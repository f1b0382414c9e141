"""Helpers of the interop harnesses in Tools/interop (run with /usr/bin/python3)."""

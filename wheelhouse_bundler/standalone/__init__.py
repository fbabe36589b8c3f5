"""Code that also runs as a single file on a target's bare Python (3.8+, stdlib only).

`bootstrap.py` ships inside every bundle as its `install.py`, and `probe.py` is what
`target-info --script` writes out for a bastion. Neither may import anything but the
standard library, nor anything else from this package: ruff checks them as Python 3.8
(pyproject.toml), and the tool imports them like any module, so the mechanics they hold
(release switching, target choice, the smoke check, the probe's facts) exist once.
"""

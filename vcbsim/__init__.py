"""vcbsim: a simulated VMware ESX host, a reference VCB proxy and a conformance kit."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vcbsim")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["__version__"]

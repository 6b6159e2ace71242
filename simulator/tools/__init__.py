"""VMware Tools in a simulated guest: quiescing scripts, SYNC driver / VSS, the abort timer.

Scripts are ordinary guest files whose text says what they do (``_script`` documents the
language); ``VMwareTools.quiesced_snapshot`` runs the seed's five steps around the host's
snapshot (spec/guest-quiescing.md, sections C-G and 3).
"""

from ._discovery import (
    LINUX_SCRIPTS_DIR,
    WINDOWS_INSTALL_PATH,
    ScriptEntry,
    ScriptPlan,
    default_scripts_dir,
    discover_scripts,
    legacy_paths,
)
from ._files import GuestFiles, MemoryGuestFiles
from ._quiesce import (
    DEFAULT_CONFIG,
    MSG,
    PHASES,
    TOOLS_STATES,
    QuiesceResult,
    ScriptRun,
    ToolsSwitches,
    VMwareTools,
    quiesced_snapshot,
)
from ._script import Script, ScriptOutcome, Statement, parse_script, run_script

__all__ = [
    "DEFAULT_CONFIG",
    "LINUX_SCRIPTS_DIR",
    "MSG",
    "PHASES",
    "TOOLS_STATES",
    "WINDOWS_INSTALL_PATH",
    "GuestFiles",
    "MemoryGuestFiles",
    "QuiesceResult",
    "Script",
    "ScriptEntry",
    "ScriptOutcome",
    "ScriptPlan",
    "ScriptRun",
    "Statement",
    "ToolsSwitches",
    "VMwareTools",
    "default_scripts_dir",
    "discover_scripts",
    "legacy_paths",
    "parse_script",
    "quiesced_snapshot",
    "run_script",
]

"""Card profiles by total VRAM, generalising the seed's ``RTX_3050_CONFIG``.

The seed hard-coded one card: ``maxVRAM 6144``, ``safeVRAM 5120`` ("safe limit with 1GB
buffer"), ``maxBatchSize 1``. Here the same idea holds for any card: the safe budget is
the total minus a reserve for the desktop, the browser and the driver (Windows' display
compositor alone keeps a few hundred MiB on the card that renders it), and the reserve
grows with the card because bigger cards usually drive bigger desktops.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HardwareProfile:
    name: str
    total_mib: int
    reserve_mib: int
    max_batch: int
    lowvram: bool  # start a managed server with --lowvram
    speed: float  # time multiplier for quality-tier hints, 1.0 = the seed's RTX 3050

    @property
    def safe_mib(self) -> int:
        return self.total_mib - self.reserve_mib

    @property
    def near_mib(self) -> float:
        """Above this the gauge turns amber: within 10% of the budget."""
        return self.safe_mib * 0.9

    def server_flags(self) -> tuple[str, ...]:
        flags = ["--preview-method", "auto"]
        if self.lowvram:
            flags.append("--lowvram")
        return tuple(flags)


# (upper bound in GiB, name, reserve MiB, max batch, --lowvram, speed vs a 3050)
_TIERS: tuple[tuple[float, str, int, int, bool, float], ...] = (
    (4.5, "4 GB", 768, 1, True, 1.6),
    (6.5, "6 GB", 1024, 1, True, 1.0),
    (9.0, "8 GB", 1024, 2, False, 0.7),
    (13.0, "12 GB", 1536, 4, False, 0.5),
    (17.0, "16 GB", 1536, 4, False, 0.4),
)


def profile_for_total(total_mib: int, *, name: str = "") -> HardwareProfile:
    """The profile of a card with ``total_mib`` MiB of VRAM (as NVML or /system_stats report it)."""
    gib = total_mib / 1024
    for bound, tier, reserve, batch, lowvram, speed in _TIERS:
        if gib <= bound:
            return HardwareProfile(name or tier, total_mib, reserve, batch, lowvram, speed)
    return HardwareProfile(name or "24 GB+", total_mib, 2048, 8, False, 0.25)


def smallest_card_for(peak_mib: float) -> HardwareProfile | None:
    """The smallest usual card (4, 6, 8, 12, 16, 24 GB) whose safe budget holds ``peak_mib``; None if none does."""
    for gib in (4, 6, 8, 12, 16, 24):
        prof = profile_for_total(gib * 1024)
        if prof.safe_mib >= peak_mib:
            return prof
    return None


# The seed's card, pinned: maxVRAM 6144 MB, safeVRAM 5120 MB, maxBatchSize 1.
RTX_3050 = profile_for_total(6144, name="RTX 3050 6 GB")
# Used when nothing is known about the card (no NVML, CPU-only or unreachable server).
DEFAULT_PROFILE = RTX_3050

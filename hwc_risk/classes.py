"""Risk classes in words, defined by share of the area.

The classes are ranked cells of the risk surface: the top 5 % of the valid
area is "very high", the next 10 % "high", the next 15 % "moderate" and the
rest "low". Defining them by area (not by fixed risk values) keeps their
meaning stable from month to month and model to model: a planner knows that
"very high" is always the most dangerous twentieth of the district.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RISK_CLASSES", "ClassShares", "RiskClass", "class_shares"]


@dataclass(frozen=True)
class RiskClass:
    code: int
    label: str
    area_share: float
    colour: str  # hex RGB


#: Risk classes from highest to lowest; colours are ColorBrewer's RdYlGn scheme.
RISK_CLASSES: tuple[RiskClass, ...] = (
    RiskClass(4, "very high", 0.05, "#d7191c"),
    RiskClass(3, "high", 0.10, "#fdae61"),
    RiskClass(2, "moderate", 0.15, "#ffffbf"),
    RiskClass(1, "low", 0.70, "#a6d96a"),
)


@dataclass(frozen=True)
class ClassShares:
    """A risk class in words: its share of the area and of the held-out month's incidents.

    One place for the sentences the outputs show: the GeoTIFF tags, the map's
    legend and the QGIS palette each put the same two figures their own way.

    >>> shares = ClassShares(RISK_CLASSES[0], 0.38)
    >>> shares.tag(), shares.legend(), shares.palette_label()  # doctest: +NORMALIZE_WHITESPACE
    ('very high: 5% of the area, 38% of held-out incidents',
     'very high (5% of area), 38% of held-out incidents',
     'very high (5% of area, 38% of held-out incidents)')
    """

    risk_class: RiskClass
    capture: float | None  # share of the held-out month's incidents in the class

    def _incidents(self) -> str:
        return "" if self.capture is None else f", {self.capture:.0%} of held-out incidents"

    def tag(self) -> str:
        """For ``risk_class.tif``'s ``class_N`` tags."""
        cls = self.risk_class
        return f"{cls.label}: {cls.area_share:.0%} of the area{self._incidents()}"

    def legend(self) -> str:
        """For the map's legend."""
        cls = self.risk_class
        return f"{cls.label} ({cls.area_share:.0%} of area){self._incidents()}"

    def palette_label(self) -> str:
        """For the QGIS paletted style."""
        cls = self.risk_class
        return f"{cls.label} ({cls.area_share:.0%} of area{self._incidents()})"


def class_shares(captures: dict[str, float] | None) -> list[ClassShares]:
    """Every risk class, highest first, with its capture where ``captures`` has one."""
    return [ClassShares(c, (captures or {}).get(c.label)) for c in RISK_CLASSES]

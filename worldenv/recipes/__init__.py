"""Recipe tables: teacher variants trained for one CPU budget and scored side by side
(``worldenv recipes``)."""

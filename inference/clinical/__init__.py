"""Clinical vocabulary shared by the viewer panels, the PDF report and the audit view (Qt-free).

One table of names (``terms``), reference / critical / implausible ranges (``ranges``), display formats
(``formatting``), plain-word predictions (``wording``) and cohort base rates (``base_rates``), so a
value or an outcome reads the same wherever a clinician meets it.
"""

from __future__ import annotations

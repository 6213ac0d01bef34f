"""Packages as last read, kept by row version so that a batch does not parse them again (issue 12).

Purchase to pay reads every package whose spend a batch moved: thousands a batch, each with its plan,
rates and thresholds as jsonb, parsed and built into a `Package` every time, about a tenth of the
worker's CPU (docs/throughput.md, "Fourth pass"). A package changes only when its row does, so a
`Package` is kept under (database, package id, the row's `xmin`, its commissioner's time zone) and
reused while a light query finds the same version. `xmin` is the id of the transaction that wrote the
row version, unique across the cluster, so any update (an approval, an edit by hand) gives a new key
and a rolled-back write's key is simply never seen again. Entries are immutable (`Package` is frozen);
the oldest go first when the cache is full.
"""

from __future__ import annotations

from carewatch.domain.model import Package
from carewatch.store.kept import Kept

PACKAGES_KEPT = 50_000

package_cache: Kept[tuple[str, str, str, str], Package] = Kept(PACKAGES_KEPT)

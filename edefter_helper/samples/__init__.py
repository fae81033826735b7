"""Sample e-Defter months for tests, benchmarks and the demo (no real file is public).

Everything is TEST data signed with TEST keys; same arguments and seed -> same bytes.

One month::

    write_month(folder, vkn, period, *, branch=None, branch_name=None, branch_in_name=False,
                parts=0, entries=20, company=None, gib=True, dr=None, gib_zip=False,
                upper_ext=False, seed=0) -> MonthFiles

writes Y, K, YB, KB (taxpayer-signed), GIB-YB, GIB-KB (plus GİB's countersignature; `gib=False`
leaves them out, `gib_zip=True` saves each as a .zip holding that one berat) and, from 2019-01
(`dr=None`), the DR. `parts=n` splits the ledgers into parts 000001..n, each with its berats;
`parts=0` writes single 000000 files. A 10-digit VKN gets a "Kurum Unvanı", an 11-digit TCKN an
"Adı Soyadı". `branch="0001"` puts Şube No / Şube Adı in every header; `branch_in_name` also
appends `-0001` to the names. MonthFiles is a list[Path] with `.spec`, `.folder`, `.find(kind, part)`.

Folder trees of several firms::

    write_tree(root, *, layout="gib" | "luca" | "zirve" | "flat" | "mixed", seed=0,
               branch_in_name=False, gib_zip=False) -> TreeInfo

TreeInfo.months maps MonthKey -> MonthSample(files, company, complete, ...); TreeInfo also lists
stale copies (Luca's .silinenler), e-Envanter files and unrelated files.

Broken variants (module `broken`) damage a written month in a named way, e.g.
`remove_gib_berat(month)`, `edit_after_signing(month)`, `xxe(month, canary)`.

Big months for benchmarks::

    write_big_month(folder, vkn, period, parts=5, part_mb=200, seed=0) -> MonthFiles

streams ~part_mb MB journal parts in constant memory.

Signatures are enveloped XAdES-BES (RSA-SHA256, C14N 1.0, one Reference URI="" with only the
enveloped-signature transform, plus the SignedProperties reference); keys in `keys`.
"""

from edefter_helper.samples import broken
from edefter_helper.samples.big import write_big_month
from edefter_helper.samples.month import MonthFiles, MonthSpec, make_spec, size_mib, write_month, write_spec
from edefter_helper.samples.tree import MonthSample, TreeInfo, write_tree

__all__ = ["MonthFiles", "MonthSample", "MonthSpec", "TreeInfo", "broken", "make_spec", "size_mib",
           "write_big_month", "write_month", "write_spec", "write_tree"]

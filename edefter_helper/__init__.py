"""e-Defter Yedekleme: find, verify, package and back up e-Defter months.

Kept import-light: every ribbon click starts a fresh Python and imports this package.
"""

__version__ = "0.1.0"
APP_NAME = "edefter-yedekleme"

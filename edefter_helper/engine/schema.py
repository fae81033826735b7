"""GİB's e-Defter XSD package for `verify --schemas DIR`: loaded offline, and schema errors told
apart from broken XML.

Loading. GİB's packages import some schemas by URL although the same files sit in the folder (the
2015 package imports the XBRL 2003 instance schema and XAdES 1.3.2 by `http://`). `load_schema`
parses DIR/edefter.xsd with a parser that has no network, no DTD and no entities, and registers an
`etree.Resolver` on it. lxml compiles an `XMLSchema` built from a parsed tree with that tree's parser
context, so every `xs:import`/`xs:include` goes through the resolver: an `http(s)://` location
(the well-known XBRL, XAdES and xmldsig ones, and any URL whose last path segment names a file in
DIR — top level first, then below) is answered with the local file; any other remote location is
answered with a stub and the load fails with a Turkish `SchemaError` naming the URL. libxml2 itself
is never handed a remote URL, so nothing is fetched whatever the libxml2 build supports.

Classifying. With `iterparse(..., schema=S)` a validation failure and a well-formedness failure
both raise `XMLSyntaxError`. `schema_problem` decides by the libxml2 error domain of the entry the
exception was built from (SCHEMASV = the schema validator), never by message text; an undeclared
root ("No matching global declaration available for the validation root") is SCHEMASV too.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from lxml import etree

__all__ = ["SchemaError", "load_schema", "schema_id", "schema_problem", "local_schema_for"]


class SchemaError(Exception):
    """The --schemas folder cannot be used; Turkish message."""


# Remote locations GİB's and the XBRL/XAdES packages use, keyed by host + path (scheme and case of
# the host do not matter), with the local file names they are known under, best first.
_WELL_KNOWN: dict[str, tuple[str, ...]] = {
    "www.xbrl.org/2003/xbrl-instance-2003-12-31.xsd": ("xbrl-instance-2003-12-31.xsd",),
    "www.xbrl.org/2003/xbrl-linkbase-2003-12-31.xsd": ("xbrl-linkbase-2003-12-31.xsd",),
    "www.xbrl.org/2003/xl-2003-12-31.xsd": ("xl-2003-12-31.xsd",),
    "www.xbrl.org/2003/xlink-2003-12-31.xsd": ("xlink-2003-12-31.xsd",),
    "uri.etsi.org/01903/v1.3.2/XAdES.xsd": ("XAdES.xsd", "XAdES01903v132-201601.xsd"),
    "uri.etsi.org/01903/v1.3.2/XAdES01903v132-201601.xsd": ("XAdES01903v132-201601.xsd", "XAdES.xsd"),
    "uri.etsi.org/01903/v1.4.1/XAdESv141.xsd": ("XAdESv141.xsd", "XAdES01903v141-201601.xsd"),
    "uri.etsi.org/01903/v1.4.1/XAdES01903v141-201601.xsd": ("XAdES01903v141-201601.xsd", "XAdESv141.xsd"),
    "www.w3.org/TR/xmldsig-core/xmldsig-core-schema.xsd": ("xmldsig-core-schema.xsd",),
    "www.w3.org/TR/2002/REC-xmldsig-core-20020212/xmldsig-core-schema.xsd": ("xmldsig-core-schema.xsd",),
    "www.w3.org/TR/2008/REC-xmldsig-core-20080610/xmldsig-core-schema.xsd": ("xmldsig-core-schema.xsd",),
    "www.w3.org/TR/xmldsig-core1/xmldsig-core-schema.xsd": ("xmldsig-core-schema.xsd",),
}
_REMOTE = ("http", "https")
# what a refused location is answered with: a document that is not a schema, never the network
_REFUSED = '<reddedildi xmlns="urn:edefter-yedekleme:offline"/>'


def _parser() -> etree.XMLParser:
    return etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False,
                           dtd_validation=False, huge_tree=False)


def _scheme(url: str) -> str | None:
    """The URL's scheme, or None for a local path (a Windows drive letter is not a scheme)."""
    m = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):", url)
    if not m or len(m.group(1)) == 1:
        return None
    return m.group(1).lower()


def _is_remote_path(url: str) -> bool:
    """UNC paths and file://host/... name another computer."""
    if url.startswith(("//", "\\\\")):
        return True
    if _scheme(url) == "file":
        host = urlsplit(url).netloc
        return host not in ("", "localhost")
    return False


class _Folder:
    """Files of the schema folder by name (lower-cased), listed once and only when needed."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._index: dict[str, list[Path]] | None = None

    def _files(self) -> dict[str, list[Path]]:
        if self._index is None:
            self._index = {}
            for dirpath, dirnames, filenames in os.walk(self.folder):
                dirnames.sort()
                for name in sorted(filenames):
                    self._index.setdefault(name.lower(), []).append(Path(dirpath) / name)
        return self._index

    def find(self, name: str, url_path: str) -> Path | None:
        if not name or name in (".", "..") or any(c in name for c in "/\\:"):
            return None  # a bare file name only: never a way out of the folder
        top = self.folder / name
        if top.is_file():
            return top
        found = self._files().get(name.lower(), [])
        if not found:
            return None
        exact = [p for p in found if p.name == name] or found
        segments = [s for s in url_path.split("/") if s]

        def rank(p: Path):
            rel = p.relative_to(self.folder).parts
            # how many trailing URL segments the file's place repeats (2006-10-25/bus/gl-bus-...)
            same = 0
            while same < min(len(rel), len(segments)) and rel[-1 - same].lower() == segments[-1 - same].lower():
                same += 1
            return (-same, len(rel), str(p))

        return min(exact, key=rank)


def local_schema_for(url: str, folder: Path) -> Path | None:
    """The file in `folder` that stands for a remote schema location, or None."""
    return _map(url, _Folder(Path(folder)))


def _map(url: str, files: _Folder) -> Path | None:
    parts = urlsplit(url)
    path = unquote(parts.path)
    key = f"{parts.netloc.lower()}{path}"
    for name in _WELL_KNOWN.get(key, ()):
        hit = files.find(name, path)
        if hit is not None:
            return hit
    return files.find(path.rsplit("/", 1)[-1], path)


class _OfflineResolver(etree.Resolver):
    """Remote schema locations -> files of the schema folder; everything remote not found there is
    refused (and remembered, so the load fails naming it)."""

    def __init__(self, folder: Path):
        super().__init__()
        self.files = _Folder(folder)
        self.mapped: dict[str, Path] = {}
        self.refused: list[str] = []
        self.dtds: list[str] = []

    def resolve(self, url, pubid, context):
        if not url:
            return None
        scheme = _scheme(url)
        if scheme in _REMOTE:
            local = _map(url, self.files)
            if local is not None:
                self.mapped[url] = local
                return self.resolve_filename(str(local), context)
            if urlsplit(url).path.lower().endswith((".dtd", ".ent", ".mod")):
                # a DTD carries no schema rules (and load_dtd=False asks for none): empty, offline
                self.dtds.append(url)
                return self.resolve_string("", context)
            self.refused.append(url)
            return self.resolve_string(_REFUSED, context)
        if (scheme not in (None, "file")) or _is_remote_path(url):
            self.refused.append(url)
            return self.resolve_string(_REFUSED, context)
        return None  # a local file: libxml2 reads it


def load_schema(folder) -> etree.XMLSchema:
    """GİB's edefter.xsd from a folder as users download it, compiled without any network access."""
    folder = Path(folder)
    xsd = folder / "edefter.xsd"
    if not folder.is_dir():
        raise SchemaError(f"Şema klasörü bulunamadı, edefter.xsd okunamadı: {folder}")
    if not xsd.is_file():
        raise SchemaError(f"Şema klasöründe edefter.xsd bulunamadı: {folder}")
    resolver = _OfflineResolver(folder)
    parser = _parser()
    parser.resolvers.add(resolver)
    schema = None
    failure = None
    try:
        schema = etree.XMLSchema(etree.parse(str(xsd), parser))
    except etree.XMLSchemaParseError as exc:
        failure = _first_line(str(exc))
    except (etree.XMLSyntaxError, OSError) as exc:
        failure = _first_line(str(exc))
    if resolver.refused:
        urls = ", ".join(dict.fromkeys(resolver.refused))
        raise SchemaError(
            f"GİB şeması yüklenemedi ({xsd}): şema {urls} adresindeki dosyayı istiyor, bu dosya şema "
            "klasöründe yok; internetten indirilmez. Aynı adlı dosyayı şema klasörüne koyun.")
    if failure is not None:
        raise SchemaError(f"GİB şeması yüklenemedi ({xsd}): {failure}")
    missing = [e for e in schema.error_log
               if e.type == etree.ErrorTypes.SCHEMAP_WARN_UNLOCATED_SCHEMA]
    if missing:
        where = re.search(r"location '([^']*)'", missing[0].message or "")
        name = where.group(1) if where else (missing[0].message or "")
        raise SchemaError(f"GİB şeması yüklenemedi ({xsd}): içe aktarılan şema dosyası bulunamadı: {name}")
    return schema


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def schema_id(folder: Path | None) -> str:
    """Identity of a schema folder for the verification cache ('' without --schemas)."""
    if folder is None:
        return ""
    h = hashlib.sha256()
    # the loader's version: verdicts made with an older loader (no offline imports, an undeclared
    # root taken for broken XML) must not stand for this one
    h.update(b"schema-loader:2\n")
    for f in sorted(Path(folder).rglob("*.xsd")):
        st = f.stat()
        h.update(f"{f}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# schema error or broken XML?

_SCHEMASV = etree.ErrorDomains.SCHEMASV
_SCHEMASP = etree.ErrorDomains.SCHEMASP
_ERROR = etree.ErrorLevels.ERROR

_PREFIXES = {
    "http://www.edefter.gov.tr": "edefter",
    "http://www.edefter.gov.tr/ek": "edefter-ek",
    "http://www.xbrl.org/2003/instance": "xbrli",
    "http://www.xbrl.org/2003/linkbase": "link",
    "http://www.w3.org/1999/xlink": "xlink",
    "http://www.xbrl.org/int/gl/cor/2006-10-25": "gl-cor",
    "http://www.xbrl.org/int/gl/bus/2006-10-25": "gl-bus",
    "http://www.xbrl.org/int/gl/muc/2006-10-25": "gl-muc",
    "http://www.xbrl.org/int/gl/gen/2006-10-25": "gl-gen",
    "http://www.xbrl.org/int/gl/plt/2006-10-25": "gl-plt",
    "http://www.w3.org/2000/09/xmldsig#": "ds",
    "http://uri.etsi.org/01903/v1.3.2#": "xades",
    "http://uri.etsi.org/01903/v1.4.1#": "xades141",
}
_CLARK = re.compile(r"\{([^}]*)\}([\w.-]+)")
_HEAD = re.compile(r"^Element '([^']*)'(?:, attribute '([^']*)')?: (.*)$", re.S)
_DETAIL_LIMIT = 300


def _short(text: str) -> str:
    """{namespace}local -> prefix:local for the namespaces of an e-Defter file."""
    return _CLARK.sub(lambda m: f"{_PREFIXES[m.group(1)]}:{m.group(2)}" if m.group(1) in _PREFIXES
                      else m.group(0), text)


def _log_entries(log) -> list:
    if log is None:
        return []
    if isinstance(log, etree._LogEntry):
        return [log]
    try:
        return list(log)
    except TypeError:
        return []


def _is_error(entry) -> bool:
    return entry.level >= _ERROR


def _same_error(entry, exc: etree.XMLSyntaxError) -> bool:
    """Is `exc` the exception lxml built from `entry` (message, then ', line L, column C')?"""
    if entry.type != exc.code:
        return False
    message = (entry.message or "").strip()
    reported = (exc.msg or "").strip()
    return bool(message) and (reported == message or reported.startswith(message + ", line "))


def _failing_entry(err, error_log):
    """The log entry behind a parse failure, or None when no log entry accounts for it."""
    if isinstance(err, etree.XMLSyntaxError):
        # the parser's own log first (iterparse(...).error_log); the exception's own error_log is a
        # copy of the thread's global log and may still hold entries of earlier files
        for log in (error_log, getattr(err, "error_log", None)):
            for entry in reversed(_log_entries(log)):
                if _is_error(entry) and _same_error(entry, err):
                    return entry
        return None
    # an error log alone: lxml raises the first error of a run
    entries = [e for e in _log_entries(err if error_log is None else error_log)
               if _is_error(e) and e.domain != _SCHEMASP]
    return entries[0] if entries else None


def schema_problem(err, error_log=None) -> str | None:
    """Tell a schema-validation failure from broken XML.

    `err` is the `XMLSyntaxError` an `iterparse(..., schema=...)` raised (pass the parser's
    `it.error_log` as `error_log` when you have it), or that error log alone. Returns a short
    detail for `problems.schema_invalid` (Turkish wording where the message is a known one) when
    the failure comes from the schema validator (libxml2 domain SCHEMASV, an undeclared root
    included), else None: the file is malformed, truncated, or failed for another reason.
    """
    entry = _failing_entry(err, error_log)
    if entry is None or entry.domain != _SCHEMASV:
        return None
    # the same run also broke the XML itself: that is the fault to report
    own = _log_entries(error_log) if isinstance(err, etree.XMLSyntaxError) else _log_entries(
        err if error_log is None else error_log)
    if any(_is_error(e) and e.domain not in (_SCHEMASV, _SCHEMASP) for e in own):
        return None
    return _describe(entry)


def _describe(entry) -> str:
    text = " ".join((entry.message or "").split())
    m = _HEAD.match(text)
    if m:
        element, attribute, rest = _short(m.group(1)), m.group(2), m.group(3)
        detail = _turkish(entry.type, element, attribute, rest)
    else:
        detail = _short(text)
    if entry.line and entry.line > 0:
        detail = f"satır {entry.line}: {detail}"
    if len(detail) > _DETAIL_LIMIT:
        detail = detail[: _DETAIL_LIMIT - 1].rstrip() + "…"
    return detail


def _expected(rest: str) -> str:
    m = re.search(r"Expected is(?: one of)? \( (.*) \)\.?$", rest)
    return _short(m.group(1)) if m else ""


def _turkish(code: int, element: str, attribute: str | None, rest: str) -> str:
    T = etree.ErrorTypes
    expected = _expected(rest)
    also = f" (beklenen: {expected})" if expected else ""
    if code == T.SCHEMAV_CVC_ELT_1 or "No matching global declaration available for the validation root" in rest:
        return f"kök öğe {element} bu şemada tanımlı değil"
    if "This element is not expected" in rest:
        return f"{element} öğesi burada beklenmiyor{also}"
    if "Missing child element(s)" in rest:
        return f"{element} öğesinde eksik alt öğe{also}"
    if "is required but missing" in rest:
        m = re.search(r"The attribute '([^']*)'", rest)
        return f"{element} öğesinde zorunlu {m.group(1) if m else ''} özniteliği eksik".replace("  ", " ")
    if attribute and "is not allowed" in rest:
        return f"{element} öğesinde {attribute} özniteliğine izin verilmiyor"
    m = re.search(r"\[facet '(\w+)'\] The value '([^']*)'", rest)
    if m:
        facet, value = m.group(1), m.group(2)
        what = {"enumeration": "izin verilen değerlerden biri değil",
                "pattern": "izin verilen biçimde değil"}.get(facet, f"'{facet}' kısıtına uymuyor")
        where = f"{element} öğesinin {attribute} özniteliğinde" if attribute else f"{element} öğesinde"
        return f"{where} '{value}' değeri {what}"
    m = re.match(r"'([^']*)' is not a valid value of", rest)
    if m:
        where = f"{element} öğesinin {attribute} özniteliğinde" if attribute else f"{element} öğesinde"
        return f"{where} '{m.group(1)}' geçerli bir değer değil"
    where = f"{element} ({attribute})" if attribute else element
    return f"{where}: {_short(rest)}"

"""Build small imsmanifest.xml documents in code, so each test shows exactly the markup it is about."""

from __future__ import annotations

NS_12 = 'xmlns="http://www.imsproject.org/xsd/imscp_rootv1p1p2" xmlns:adlcp="http://www.adlnet.org/xsd/adlcp_rootv1p2"'
NS_2004 = (
    'xmlns="http://www.imsglobal.org/xsd/imscp_v1p1" '
    'xmlns:adlcp="http://www.adlnet.org/xsd/adlcp_v1p3" '
    'xmlns:adlseq="http://www.adlnet.org/xsd/adlseq_v1p3" '
    'xmlns:adlnav="http://www.adlnet.org/xsd/adlnav_v1p3" '
    'xmlns:imsss="http://www.imsglobal.org/xsd/imsss"'
)
# The 2004 IMS CP namespace with only adlcp: what most 2004 packages without sequencing declare.
NS_2004_PLAIN = 'xmlns="http://www.imsglobal.org/xsd/imscp_v1p1" xmlns:adlcp="http://www.adlnet.org/xsd/adlcp_v1p3"'


def attrs_of(values: dict[str, str | None]) -> str:
    """Render attributes, skipping None values."""
    return "".join(f' {name}="{value}"' for name, value in values.items() if value is not None)


def item(
    identifier: str,
    *children: str,
    ref: str | None = None,
    title: str | None = "Item",
    attrs: str = "",
    body: str = "",
) -> str:
    """An <item>; `children` are nested items, `body` any extra child markup (adlcp, sequencing...)."""
    title_xml = f"<title>{title}</title>" if title is not None else ""
    head = attrs_of({"identifier": identifier, "identifierref": ref})
    return f"<item{head}{attrs}>{title_xml}{''.join(children)}{body}</item>"


def organization(
    identifier: str | None = "org1",
    *items: str,
    title: str | None = "Course",
    attrs: str = "",
    body: str = "",
) -> str:
    """An <organization> holding `items` (one launchable item by default)."""
    title_xml = f"<title>{title}</title>" if title is not None else ""
    content = "".join(items) if items else item("item1", ref="res1")
    return f"<organization{attrs_of({'identifier': identifier})}{attrs}>{title_xml}{content}{body}</organization>"


def resource(
    identifier: str = "res1",
    href: str | None = "index.html",
    scorm_type: str | None = "sco",
    *,
    files: list[str] | None = None,
    dependencies: tuple[str, ...] = (),
    base: str | None = None,
    type_attr: str = "adlcp:scormType",
    attrs: str = "",
) -> str:
    """A <resource>; `files` defaults to the href, as conformant packages list it."""
    listed = files if files is not None else ([href] if href else [])
    head = attrs_of(
        {"identifier": identifier, "type": "webcontent", type_attr: scorm_type, "href": href, "xml:base": base}
    )
    body = "".join(f'<file href="{name}"/>' for name in listed)
    body += "".join(f'<dependency identifierref="{ref}"/>' for ref in dependencies)
    return f"<resource{head}{attrs}>{body}</resource>"


def manifest(
    *,
    schemaversion: str | None = "2004 4th Edition",
    namespaces: str = NS_2004,
    organizations: str | None = None,
    resources: str | None = None,
    default: str | None = "org1",
    base: str | None = None,
    resources_base: str | None = None,
    extra: str = "",
    identifier: str | None = "com.example.course",
    encoding: str = "UTF-8",
    root: str = "manifest",
) -> bytes:
    """A whole manifest, encoded as its prolog declares. Defaults: one SCO in one organization."""
    metadata = (
        f"<metadata><schema>ADL SCORM</schema><schemaversion>{schemaversion}</schemaversion></metadata>"
        if schemaversion is not None
        else ""
    )
    orgs = organizations if organizations is not None else organization()
    res = resources if resources is not None else resource()
    head = attrs_of({"identifier": identifier, "version": "1", "xml:base": base})
    text = (
        f'<?xml version="1.0" encoding="{encoding}"?>\n'
        f"<{root}{head} {namespaces}>{metadata}"
        f"<organizations{attrs_of({'default': default})}>{orgs}</organizations>"
        f"<resources{attrs_of({'xml:base': resources_base})}>{res}</resources>{extra}</{root}>"
    )
    return text.encode(encoding)


def manifest_12(**overrides: object) -> bytes:
    """A one-SCO SCORM 1.2 manifest (lower-case adlcp:scormtype)."""
    values: dict[str, object] = {
        "schemaversion": "1.2",
        "namespaces": NS_12,
        "resources": resource(type_attr="adlcp:scormtype"),
    }
    values.update(overrides)
    return manifest(**values)  # type: ignore[arg-type]


def billion_laughs(body: bytes) -> bytes:
    """An XML document whose DTD nests entities to a billion "lol"s, followed by `body` (which should
    use `&lol9;`): a parser that expanded entities would exhaust memory."""
    levels = "".join(
        f' <!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">\n' for n in range(1, 10)
    )
    return b'<?xml version="1.0"?>\n<!DOCTYPE manifest [\n <!ENTITY lol "lol">\n' + levels.encode() + b"]>\n" + body

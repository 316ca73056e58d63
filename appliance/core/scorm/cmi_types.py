"""CMI value types shared by the server and the browser: regexes, interaction formats, error codes.

Everything here is plain JSON-serialisable data. `elements.datamodel_table()` ships it to the browser,
where `static/runtime/datamodel.js` interprets it with the same algorithm as `datamodel.py`, so a value
the server rejects is rejected by the player too.

Regex convention: the patterns are written in the common subset of Python `re` and JavaScript RegExp
(no `\\d`/`\\s`/`\\w`, whose Unicode meaning differs; explicit ASCII classes instead; no lookbehind;
no length quantifiers over free text, because JavaScript counts UTF-16 units). They are stored
*unanchored*: Python applies them with `re.fullmatch`, JavaScript with `new RegExp("^(?:" + p + ")$")`.
Lengths (SPM) are checked in code, counting code points on both sides.
"""

from __future__ import annotations

from typing import Any

_WS = "[ \\t\\n\\r\\f\\v]"
_NWS = "[^ \\t\\n\\r\\f\\v]"
_URN = "[uU][rR][nN]:"
_DELIMS = "{}\\[\\]"
_NWS_ID = f"[^ \\t\\n\\r\\f\\v{_DELIMS}]"

# Unanchored patterns (see module docstring).
PATTERNS: dict[str, str] = {
    # CMIDecimal (1.2) and real(10,7) (2004): optional minus, digits with optional point.
    "decimal": "-?(?:[0-9]+(?:\\.[0-9]*)?|\\.[0-9]+)",
    "sinteger": "-?[0-9]+",
    # CMIIdentifier (1.2): printable ASCII, not blank (as Moodle/scorm-again accept; strict spec is narrower).
    "identifier12": "[ -~]*[!-~][ -~]*",
    # CMITimespan HHHH:MM:SS.SS and CMITime HH:MM:SS.SS (1.2).
    "timespan12": "[0-9]{2,4}:[0-9]{2}:[0-9]{2}(?:\\.[0-9]{1,2})?",
    "time12": "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,2})?",
    # long/short_identifier_type (2004): not blank; a URN when it starts with "urn:".
    "identifier": f"{_URN}[A-Za-z0-9][A-Za-z0-9-]{{0,31}}:{_NWS}+|(?!{_URN}){_WS}*{_NWS}[\\s\\S]*",
    # short_identifier_type inside interaction values: an identifier without the characters of the
    # reserved delimiters ("[,]", "[.]", "[:]", "{name=...}"), which a URI never contains (RFC 3986).
    "short_identifier": f"{_URN}[A-Za-z0-9][A-Za-z0-9-]{{0,31}}:{_NWS_ID}+|(?!{_URN}){_WS}*{_NWS_ID}[^{_DELIMS}]*",
    # language_type (RFC 3066) syntax; the primary subtag must also be in LANGUAGE_CODES, be "i" or "x",
    # or be an ISO 639-2 code reserved for local use (language_local).
    "language": "(?:[a-zA-Z]{2,3}|[iIxX])(?:-[a-zA-Z0-9]{1,8})*",
    "language_local": "[qQ][a-tA-T][a-zA-Z]",
    # time(second,10,0): YYYY[-MM[-DD[Thh[:mm[:ss[.s[TZD]]]]]]] (RTE 4.2), years 1970-2038. A time zone
    # designator (Z, +hh, -hh[:mm]) only follows fractional seconds: "…T09:45:58Z" is a type mismatch
    # (as the ADL conformance suite's DMI checks).
    "timestamp": (
        "(?:19[7-9][0-9]|20[0-2][0-9]|203[0-8])"
        "(?:-(?:0[1-9]|1[0-2])"
        "(?:-(?:0[1-9]|[12][0-9]|3[01])"
        "(?:T(?:[01][0-9]|2[0-3])"
        "(?::[0-5][0-9]"
        "(?::[0-5][0-9](?:\\.[0-9]{1,2}(?:Z|[+-](?:[01][0-9]|2[0-3])(?::[0-5][0-9])?)?)?"
        ")?)?)?)?)?"
    ),
    # timeinterval(second,10,2): P[nY][nM][nD][T[nH][nM][n[.n[n]]S]], at least one component.
    "duration": (
        "P(?!$)(?:[0-9]+Y)?(?:[0-9]+M)?(?:[0-9]+D)?"
        "(?:T(?=[0-9])(?:[0-9]+H)?(?:[0-9]+M)?(?:[0-9]+(?:\\.[0-9]{1,2})?S)?)?"
    ),
    # adl.nav.request with a target: {target=ID}choice (and {target=ID}jump in 4th Edition).
    "nav_target": "\\{target=[^}]+\\}(?:choice|jump)",
    "nav_target_3rd": "\\{target=[^}]+\\}choice",
    # adl.nav.request_valid.choice.{target=ID}: the part after the element name.
    "target_suffix": "\\{target=[^}]+\\}",
    # An array index path segment.
    "index": "0|[1-9][0-9]*",
}

# RFC 3066 primary language subtags: the ISO 639-1 (two letters) and ISO 639-2 (three letters, both the
# bibliographic and the terminology forms) codes, from Debian's iso-codes (iso_639-2.json), plus the
# withdrawn codes the ADL conformance suite still accepts (mo, mol, scc, scr). A language_type whose
# primary subtag is not one of these (nor "i", "x" or a qaa-qtz local code) is a type mismatch: the
# suite's DMI rejects {lang=frl}, {lang=exg}, {lang=sp} and {lang=ruq-JM}.
_ISO_639_1 = (
    "aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de "
    "dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id "
    "ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu "
    "lv mg mh mi mk ml mn mo mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt "
    "qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to "
    "tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu "
)
_ISO_639_2 = (
    "aar abk ace ach ada ady afa afh afr ain aka akk alb ale alg alt amh ang anp apa ara arc arg arm arn "
    "arp art arw asm ast ath aus ava ave awa aym aze bad bai bak bal bam ban baq bas bat bej bel bem ben "
    "ber bho bih bik bin bis bla bnt bod bos bra bre btk bua bug bul bur byn cad cai car cat cau ceb cel "
    "ces cha chb che chg chi chk chm chn cho chp chr chu chv chy cmc cnr cop cor cos cpe cpf cpp cre crh "
    "crp csb cus cym cze dak dan dar day del den deu dgr din div doi dra dsb dua dum dut dyu dzo efi egy "
    "eka ell elx eng enm epo est eus ewe ewo fan fao fas fat fij fil fin fiu fon fra fre frm fro frr frs "
    "fry ful fur gaa gay gba gem geo ger gez gil gla gle glg glv gmh goh gon gor got grb grc gre grn gsw "
    "guj gwi hai hat hau haw heb her hil him hin hit hmn hmo hrv hsb hun hup hye iba ibo ice ido iii ijo "
    "iku ile ilo ina inc ind ine inh ipk ira iro isl ita jav jbo jpn jpr jrb kaa kab kac kal kam kan kar "
    "kas kat kau kaw kaz kbd kha khi khm kho kik kin kir kmb kok kom kon kor kos kpe krc krl kro kru kua "
    "kum kur kut lad lah lam lao lat lav lez lim lin lit lol loz ltz lua lub lug lui lun luo lus mac mad "
    "mag mah mai mak mal man mao map mar mas may mdf mdr men mga mic min mis mkd mkh mlg mlt mnc mni mno "
    "moh mol mon mos mri msa mul mun mus mwl mwr mya myn myv nah nai nap nau nav nbl nde ndo nds nep new "
    "nia nic niu nld nno nob nog non nor nqo nso nub nwc nya nym nyn nyo nzi oci oji ori orm osa oss ota "
    "oto paa pag pal pam pan pap pau peo per phi phn pli pol pon por pra pro pus que raj rap rar roa roh "
    "rom ron rum run rup rus sad sag sah sai sal sam san sas sat scc scn sco scr sel sem sga sgn shn sid "
    "sin sio sit sla slk slo slv sma sme smi smj smn smo sms sna snd snk sog som son sot spa sqi srd srn "
    "srp srr ssa ssw suk sun sus sux swa swe syc syr tah tai tam tat tel tem ter tet tgk tgl tha tib tig "
    "tir tiv tkl tlh tli tmh tog ton tpi tsi tsn tso tuk tum tup tur tut tvl twi tyv udm uga uig ukr umb "
    "und urd uzb vai ven vie vol vot wak wal war was wel wen wln wol xal xho yao yap yid yor ypk zap zbl "
    "zen zgh zha zho znd zul zun zxx zza "
)
LANGUAGE_CODES: str = " ".join(sorted(set((_ISO_639_1 + _ISO_639_2).split())))

# Interaction value formats (SCORM 2004 RTE 4.2.9): for each interaction type, how a
# learner_response ("response") and a correct_responses.n.pattern ("pattern") are built.
# "form": "vocab" (one of values) | "single" (one item) | "list" (items joined by "[,]").
# "item": short_identifier | localized | pair | step | step_pattern | real | range | string.
# "delimiters": the {name=true|false} prefixes a pattern may start with.
_ID_LIST = {"form": "list", "item": "short_identifier", "min": 0, "unique": True}
_SEQUENCE = {"form": "list", "item": "short_identifier", "min": 1}
_TF = {"form": "vocab", "values": ["true", "false"]}
INTERACTION_TYPES: dict[str, dict[str, Any]] = {
    "true-false": {"response": _TF, "pattern": _TF, "max_patterns": 1, "spm_patterns": 1},
    "choice": {"response": _ID_LIST, "pattern": _ID_LIST, "unique_patterns": True, "spm_patterns": 10},
    "fill-in": {
        "response": {"form": "list", "item": "localized", "min": 0},
        "pattern": {"form": "list", "item": "localized", "min": 0, "delimiters": ["case_matters", "order_matters"]},
        "spm_patterns": 5,
    },
    "long-fill-in": {
        "response": {"form": "single", "item": "localized"},
        "pattern": {"form": "single", "item": "localized", "delimiters": ["case_matters"]},
        "spm_patterns": 5,
    },
    "likert": {
        "response": {"form": "single", "item": "short_identifier"},
        "pattern": {"form": "single", "item": "short_identifier"},
        "max_patterns": 1,
        "spm_patterns": 1,
    },
    "matching": {
        "response": {"form": "list", "item": "pair", "min": 0},
        "pattern": {"form": "list", "item": "pair", "min": 1},
        "spm_patterns": 5,
    },
    "performance": {
        "response": {"form": "list", "item": "step", "min": 0},
        "pattern": {"form": "list", "item": "step_pattern", "min": 1, "delimiters": ["order_matters"]},
        "spm_patterns": 5,
    },
    "sequencing": {"response": _SEQUENCE, "pattern": _SEQUENCE, "unique_patterns": True, "spm_patterns": 5},
    "numeric": {
        "response": {"form": "single", "item": "real"},
        "pattern": {"form": "single", "item": "range"},
        "max_patterns": 1,
        "spm_patterns": 1,
    },
    "other": {
        "response": {"form": "single", "item": "string"},
        "pattern": {"form": "single", "item": "string"},
        "max_patterns": 1,
        "spm_patterns": 1,
    },
}

# Which public code each internal condition maps to (errors.md).
ERRORS_12: dict[str, int] = {
    "empty_get": 201,
    "empty_set": 201,
    "undefined": 401,
    "container": 401,
    "set_keyword": 402,
    "read_only": 403,
    "write_only": 404,
    "no_children": 202,
    "no_count": 203,
    "no_version": 401,
    "get_index": 201,  # ADL 1.2 mode uses 101, Moodle 201: "argument is not a valid element"
    "set_index": 201,
    "new_record": 201,
    "dependency": 201,
    "max_records": 405,
    "not_unique": 405,
    "write_once": 405,
    "type": 405,
    "range": 405,
    "too_long": 405,
    "missing_target": 401,
    "not_initialized_value": 0,  # every readable 1.2 element has a default
}
ERRORS_2004: dict[str, int] = {
    "empty_get": 301,
    "empty_set": 351,
    "undefined": 401,
    "container": 401,
    "set_keyword": 404,
    "read_only": 404,
    "write_only": 405,
    "no_children": 301,
    "no_count": 301,
    "no_version": 301,
    "get_index": 301,
    "set_index": 351,
    "new_record": 408,
    "dependency": 408,
    "max_records": 351,
    "not_unique": 351,
    "write_once": 351,
    "type": 406,
    "range": 407,
    "too_long": 351,
    "missing_target": 301,
    "not_initialized_value": 403,
}

# Codes of the API state machine (rte-rules.md section 2), by call and state.
RTE_12: dict[str, Any] = {
    "initialize": {"running": 101},
    "terminate": {"not_initialized": 301},
    "get": {"not_initialized": 301},
    "set": {"not_initialized": 301},
    "commit": {"not_initialized": 301},
    "argument": 201,
    "commit_failure": 101,
    "terminate_failure": 101,
    "after_terminate": "not_initialized",  # 1.2 has no terminated state
}
RTE_2004: dict[str, Any] = {
    "initialize": {"running": 103, "terminated": 104},
    "terminate": {"not_initialized": 112, "terminated": 113},
    "get": {"not_initialized": 122, "terminated": 123},
    "set": {"not_initialized": 132, "terminated": 133},
    "commit": {"not_initialized": 142, "terminated": 143},
    "argument": 201,
    "commit_failure": 391,
    "terminate_failure": 391,
    "after_terminate": "terminated",
}

ERROR_STRINGS_12: dict[str, str] = {
    "0": "No error",
    "101": "General exception",
    "201": "Invalid argument error",
    "202": "Element cannot have children",
    "203": "Element not an array - cannot have count",
    "301": "Not initialized",
    "401": "Not implemented error",
    "402": "Invalid set value, element is a keyword",
    "403": "Element is read only",
    "404": "Element is write only",
    "405": "Incorrect data type",
}
ERROR_STRINGS_2004: dict[str, str] = {
    "0": "No Error",
    "101": "General Exception",
    "102": "General Initialization Failure",
    "103": "Already Initialized",
    "104": "Content Instance Terminated",
    "111": "General Termination Failure",
    "112": "Termination Before Initialization",
    "113": "Termination After Termination",
    "122": "Retrieve Data Before Initialization",
    "123": "Retrieve Data After Termination",
    "132": "Store Data Before Initialization",
    "133": "Store Data After Termination",
    "142": "Commit Before Initialization",
    "143": "Commit After Termination",
    "201": "General Argument Error",
    "301": "General Get Failure",
    "351": "General Set Failure",
    "391": "General Commit Failure",
    "401": "Undefined Data Model Element",
    "402": "Unimplemented Data Model Element",
    "403": "Data Model Element Value Not Initialized",
    "404": "Data Model Element Is Read Only",
    "405": "Data Model Element Is Write Only",
    "406": "Data Model Element Type Mismatch",
    "407": "Data Model Element Value Out Of Range",
    "408": "Data Model Dependency Not Established",
}

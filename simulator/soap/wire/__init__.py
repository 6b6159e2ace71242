"""The SOAP wire: request decoding and answer encoding (pyVmomi's deserializer and serializer,
``_codec.py``, with the table-driven fast paths ``_fastdecode.py`` and ``_fastencode.py``),
data objects built without per-field checks (``_dataobj.py``) and the WSDL documents generated
from pyVmomi's type metadata (``_wsdl.py``)."""

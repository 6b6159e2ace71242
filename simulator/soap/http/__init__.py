"""The HTTP layer of ``vcbsim serve``: the server and its TLS certificate (``_server.py``,
``_cert.py``) and the datastore and guest file transfers over ``/folder`` and ``/guestFile``
(``_files.py``)."""

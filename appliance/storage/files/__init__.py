"""Package files behind one interface: the data directory (default) or an S3-compatible object store.

`base` is the interface the services use (`FileStore`, and the one function that forms keys),
`local` and `s3` its two implementations, `config` the `files` setting. A package's way through a
store: `receive` (an upload streamed in), `fetch` (its ZIP brought to a worker's scratch folder),
`publish` (the extracted version stored, all or nothing) and `serving` (a version's content streamed
with Range and ETag, or redirected to a signed URL).
"""

from appliance.storage.files.base import Deleted, FileMissing, FileStat, FileStore, FileWriter, StoredFile, tenant_key
from appliance.storage.files.config import FilesConfig, LocalFilesConfig, S3FilesConfig, open_file_store, parse_files

__all__ = [
    "Deleted",
    "FileMissing",
    "FileStat",
    "FileStore",
    "FileWriter",
    "FilesConfig",
    "LocalFilesConfig",
    "S3FilesConfig",
    "StoredFile",
    "open_file_store",
    "parse_files",
    "tenant_key",
]

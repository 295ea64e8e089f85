"""emofuse package.

Catalog files are shared by processes that write while others read (flow, Dask workers,
other runs). fsspec's object-store filesystems cache directory listings per process, and a
cached listing hides what other processes wrote since (``exists`` says False, a part that
a fresh listing shows "does not exist"), so every filesystem opened for a catalog
(any ``s3://``/``gs://``/``az://`` URL, through :func:`fsspec.core.url_to_fs`) lists afresh.
"""
try:
    import fsspec.config
except ImportError:  # the package's files without its dependencies (tests/test_packaging.py)
    pass
else:
    for _protocol in ("s3", "s3a", "gs", "gcs", "abfs", "az", "adl"):
        fsspec.config.conf.setdefault(_protocol, {}).setdefault("use_listings_cache", False)

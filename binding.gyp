{
  "targets": [
    {
      "target_name": "coffer_native",
      "sources": ["native/syscalls.c", "native/aead.c", "native/scan-directory.c", "native/errno-name.c", "native/string-argument.c", "native/copy-bytes.c", "native/huge-pages.c", "native/copy-file-ranges.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}

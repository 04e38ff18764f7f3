{
  "targets": [
    {
      "target_name": "marmot_secp256k1",
      "sources": ["src/addon.c"],
      "libraries": ["-lsecp256k1"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}

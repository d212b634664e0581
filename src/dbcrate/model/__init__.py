"""What an archive holds, whatever engine or file it came from: logical types, table schemas,
the manifest (and its validation), value encodings and table selection."""

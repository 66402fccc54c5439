;; Route 4: the import exported again under another name; the host calls the export.
(module
  (import "env" "secret" (func $secret (param i32) (result i32)))
  (export "secret_again" (func $secret)))

;; Route 4: the import held by an exported funcref global; the host calls the reference.
(module
  (import "env" "secret" (func $secret (param i32) (result i32)))
  (global (export "fref") funcref (ref.func $secret)))

;; Route 2/3: a declarative element segment lets code take `ref.func` of the import.
(module
  (type $t (func (param i32) (result i32)))
  (import "env" "secret" (func $secret (type $t)))
  (elem declare func $secret)
  (func (export "run") (result i32)
    (call_ref $t (i32.const 42) (ref.func $secret))))

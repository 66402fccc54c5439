;; Route 2: `table.fill` with a reference to the import.
(module
  (type $t (func (param i32) (result i32)))
  (import "env" "secret" (func $secret (type $t)))
  (table 8 funcref)
  (elem declare func $secret)
  (func (export "run") (result i32)
    (table.fill (i32.const 2) (ref.func $secret) (i32.const 4))
    (call_indirect (type $t) (i32.const 42) (i32.const 5))))

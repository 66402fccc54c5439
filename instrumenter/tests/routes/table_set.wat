;; Route 2: `table.set` stores a reference to the import.
(module
  (type $t (func (param i32) (result i32)))
  (import "env" "secret" (func $secret (type $t)))
  (table 4 funcref)
  (elem declare func $secret)
  (func (export "run") (result i32)
    (table.set (i32.const 3) (ref.func $secret))
    (call_indirect (type $t) (i32.const 42) (i32.const 3))))

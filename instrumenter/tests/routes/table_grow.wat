;; Route 2: `table.grow` with the import as the fill value of the new slots.
(module
  (type $t (func (param i32) (result i32)))
  (import "env" "secret" (func $secret (type $t)))
  (table 0 funcref)
  (elem declare func $secret)
  (func (export "run") (result i32)
    (drop (table.grow (ref.func $secret) (i32.const 2)))
    (call_indirect (type $t) (i32.const 42) (i32.const 1))))

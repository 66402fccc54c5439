;; Route 3: a reference flows through a local into a table and `call_indirect`.
(module
  (type $t (func (param i32) (result i32)))
  (import "env" "secret" (func $secret (type $t)))
  (table 1 funcref)
  (elem declare func $secret)
  (func (export "run") (result i32)
    (local $f funcref)
    (local.set $f (ref.func $secret))
    (table.set (i32.const 0) (local.get $f))
    (call_indirect (type $t) (i32.const 42) (i32.const 0))))

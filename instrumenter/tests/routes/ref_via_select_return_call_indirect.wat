;; Route 3: a reference chosen by a typed `select` reaches `return_call_indirect`.
(module
  (type $t (func (param i32) (result i32)))
  (import "env" "secret" (func $secret (type $t)))
  (table 1 funcref)
  (elem declare func $secret)
  (func $other (type $t) (local.get 0))
  (elem declare func $other)
  (func (export "run") (result i32)
    (table.set (i32.const 0)
      (select (result funcref) (ref.func $secret) (ref.func $other) (i32.const 1)))
    (return_call_indirect (type $t) (i32.const 42) (i32.const 0))))

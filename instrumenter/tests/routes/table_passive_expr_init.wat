;; Route 2: a passive element segment in expression form copied with `table.init`.
(module
  (type $t (func (param i32) (result i32)))
  (import "env" "secret" (func $secret (type $t)))
  (table 2 funcref)
  (elem $seg funcref (ref.null func) (ref.func $secret))
  (func (export "run") (result i32)
    (table.init $seg (i32.const 0) (i32.const 0) (i32.const 2))
    (call_indirect (type $t) (i32.const 42) (i32.const 1))))

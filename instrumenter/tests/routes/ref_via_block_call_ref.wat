;; Route 3: a reference produced as a block result reaches `call_ref`.
(module
  (type $t (func (param i32) (result i32)))
  (import "env" "secret" (func $secret (type $t)))
  (elem declare func $secret)
  (func (export "run") (result i32)
    (call_ref $t (i32.const 42)
      (block (result (ref $t)) (ref.func $secret)))))

;; sync.wat: a small "offline-first" program for the suppression and audit example.
;;
;; It reads notes.txt from the first preopened directory, tries to fetch updates
;; (`sock_recv`) and to upload the notes (`sock_send`) on socket descriptor 4, and,
;; whatever the network answers, keeps a local copy in outbox.txt. Every network
;; failure is reported with its errno and the program carries on, so it exits 0 both
;; when the host refuses the socket (EBADF, 8: no socket was handed over) and when a
;; policy suppresses the calls with ERRNO_ACCES (2): the errno it prints tells which
;; of the two answered.
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close"
    (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_recv"
    (func $sock_recv (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_send"
    (func $sock_send (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit"
    (func $proc_exit (param i32)))

  ;; Memory map:
  ;;     0..64     scratch: iovec (0), byte counts (8), opened fd (12), recv flags (16)
  ;;    64..1024   constant strings
  ;;  1024..2048   the output line being built
  ;;  4096..8192   buffer for received updates
  ;; 16384..20480  the notes
  (memory (export "memory") 1)

  (global $DIR i32 (i32.const 3))
  (global $SOCKET_FD i32 (i32.const 4))
  (global $OUT i32 (i32.const 1024))
  (global $out_len (mut i32) (i32.const 0))
  (global $RECV i32 (i32.const 4096))
  (global $NOTES i32 (i32.const 16384))
  (global $NOTES_CAP i32 (i32.const 4096))

  (data (i32.const 64)  "notes.txt")                                ;; 9
  (data (i32.const 80)  "outbox.txt")                               ;; 10
  (data (i32.const 96)  "sync: read ")                              ;; 11
  (data (i32.const 112) " bytes from notes.txt")                    ;; 21
  (data (i32.const 144) "sync: no updates (sock_recv: errno ")      ;; 35
  (data (i32.const 192) "sync: received ")                          ;; 15
  (data (i32.const 208) " bytes of updates")                        ;; 17
  (data (i32.const 240) "sync: upload failed (sock_send: errno ")   ;; 38
  (data (i32.const 288) "sync: uploaded ")                          ;; 15
  (data (i32.const 304) " bytes")                                   ;; 6
  (data (i32.const 320) "sync: saved ")                             ;; 12
  (data (i32.const 336) " bytes to outbox.txt")                     ;; 20
  (data (i32.const 368) "sync: cannot open notes.txt: errno ")      ;; 35
  (data (i32.const 416) "sync: cannot write outbox.txt: errno ")    ;; 37
  (data (i32.const 464) "), working offline")                       ;; 18

  (func $out_str (param $p i32) (param $n i32)
    (memory.copy (i32.add (global.get $OUT) (global.get $out_len)) (local.get $p) (local.get $n))
    (global.set $out_len (i32.add (global.get $out_len) (local.get $n))))

  (func $out_byte (param $b i32)
    (i32.store8 (i32.add (global.get $OUT) (global.get $out_len)) (local.get $b))
    (global.set $out_len (i32.add (global.get $out_len) (i32.const 1))))

  (func $out_u32 (param $v i32)
    (if (i32.ge_u (local.get $v) (i32.const 10))
      (then (call $out_u32 (i32.div_u (local.get $v) (i32.const 10)))))
    (call $out_byte (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10)))))

  (func $out_line (param $fd i32)
    (call $out_byte (i32.const 10))
    (i32.store (i32.const 0) (global.get $OUT))
    (i32.store (i32.const 4) (global.get $out_len))
    (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
    (global.set $out_len (i32.const 0)))

  (func $die (param $msg i32) (param $msg_len i32) (param $errno i32)
    (call $out_str (local.get $msg) (local.get $msg_len))
    (call $out_u32 (local.get $errno))
    (call $out_line (i32.const 2))
    (call $proc_exit (i32.const 1))
    (unreachable))

  (func $main (export "_start")
    (local $fd i32) (local $err i32) (local $len i32)

    ;; Read the notes: lookupflags SYMLINK_FOLLOW, rights FD_READ.
    (local.set $err (call $path_open (global.get $DIR) (i32.const 1) (i32.const 64) (i32.const 9)
                                     (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0)
                                     (i32.const 12)))
    (if (local.get $err) (then (call $die (i32.const 368) (i32.const 35) (local.get $err))))
    (local.set $fd (i32.load (i32.const 12)))
    (i32.store (i32.const 0) (global.get $NOTES))
    (i32.store (i32.const 4) (global.get $NOTES_CAP))
    (local.set $err (call $fd_read (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
    (if (local.get $err) (then (call $die (i32.const 368) (i32.const 35) (local.get $err))))
    (local.set $len (i32.load (i32.const 8)))
    (drop (call $fd_close (local.get $fd)))
    (call $out_str (i32.const 96) (i32.const 11))
    (call $out_u32 (local.get $len))
    (call $out_str (i32.const 112) (i32.const 21))
    (call $out_line (i32.const 1))

    ;; Fetch updates. A suppressed call writes nothing, so the byte count is cleared
    ;; first and only read when the call succeeded.
    (i32.store (i32.const 0) (global.get $RECV))
    (i32.store (i32.const 4) (i32.const 4096))
    (i32.store (i32.const 8) (i32.const 0))
    (local.set $err (call $sock_recv (global.get $SOCKET_FD) (i32.const 0) (i32.const 1)
                                     (i32.const 0) (i32.const 8) (i32.const 16)))
    (if (local.get $err)
      (then
        (call $out_str (i32.const 144) (i32.const 35))
        (call $out_u32 (local.get $err))
        (call $out_str (i32.const 464) (i32.const 18)))
      (else
        (call $out_str (i32.const 192) (i32.const 15))
        (call $out_u32 (i32.load (i32.const 8)))
        (call $out_str (i32.const 208) (i32.const 17))))
    (call $out_line (i32.const 1))

    ;; Upload the notes.
    (i32.store (i32.const 0) (global.get $NOTES))
    (i32.store (i32.const 4) (local.get $len))
    (i32.store (i32.const 8) (i32.const 0))
    (local.set $err (call $sock_send (global.get $SOCKET_FD) (i32.const 0) (i32.const 1)
                                     (i32.const 0) (i32.const 8)))
    (if (local.get $err)
      (then
        (call $out_str (i32.const 240) (i32.const 38))
        (call $out_u32 (local.get $err))
        (call $out_str (i32.const 464) (i32.const 18)))
      (else
        (call $out_str (i32.const 288) (i32.const 15))
        (call $out_u32 (i32.load (i32.const 8)))
        (call $out_str (i32.const 304) (i32.const 6))))
    (call $out_line (i32.const 1))

    ;; Keep a local copy: oflags CREAT|TRUNC (9), rights FD_WRITE (64).
    (local.set $err (call $path_open (global.get $DIR) (i32.const 1) (i32.const 80) (i32.const 10)
                                     (i32.const 9) (i64.const 64) (i64.const 0) (i32.const 0)
                                     (i32.const 12)))
    (if (local.get $err) (then (call $die (i32.const 416) (i32.const 37) (local.get $err))))
    (local.set $fd (i32.load (i32.const 12)))
    (i32.store (i32.const 0) (global.get $NOTES))
    (i32.store (i32.const 4) (local.get $len))
    (local.set $err (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
    (if (local.get $err) (then (call $die (i32.const 416) (i32.const 37) (local.get $err))))
    (drop (call $fd_close (local.get $fd)))
    (call $out_str (i32.const 320) (i32.const 12))
    (call $out_u32 (i32.load (i32.const 8)))
    (call $out_str (i32.const 336) (i32.const 20))
    (call $out_line (i32.const 1))))

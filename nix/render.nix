# nspawn-cage: pure renderers and checks for the configuration files the
# NixOS module writes (nix/module.nix), in the syntax of nspawn-cage.conf(5).
#
# Only builtins: this file evaluates without nixpkgs, so tests/nix/run.sh
# runs it with nix-instantiate --eval and feeds the texts to the C parser.
#
#   let r = import ./nix/render.nix; in
#   r.admin settings                      # /etc/nspawn-cage/nspawn-cage.conf
#   r.cage { name; toplevel; cage; }      # /etc/nspawn-cage/cages/NAME.conf
#   r.checkSettings settings              # [ "message" ... ], empty when fine
#   r.checkCage { name; cage; settings; } # [ "message" ... ]
#   r.presetPackages text                 # Packages= of a preset file
#
# `settings` has the sections and keys of nspawn-cage.conf(5) as attributes
# (settings.Limits.Memory = "4G"); missing attributes and null values are
# not written (the built-in default applies), nor are empty lists.
# `cage` is a value of services.nspawn-cage.cages.<name> (see module.nix):
# project, user, preset, packages, limits.{CPUs,Memory,Swap,Tasks}, network,
# display.{X11,Wayland,GPU,X11Trusted}, binds, bindsReadOnly, environment.{Pass,Set}.
#
# The C parser is strict (nspawn-cage.conf(5), SYNTAX), so every line is
# checked as it is made, and a value that would not read back as written
# makes the renderer throw ("nspawn-cage: ..."):
#   * at most 190 characters a line: lists are written one element a line
#     (Packages=, Pass=, Bind=, BindReadOnly=, Set=NAME=VALUE), which the
#     parser accumulates; AllowUsers= and AllowNetwork= replace on every
#     line, so they are one line each;
#   * no newline, carriage return or other control character (tab aside);
#   * no ';' after white space (it would start a comment), no white space at
#     the start or end of a value (it would be stripped);
#   * a list element is one word: no blanks in it, not empty;
#   * booleans are yes/no; [Policy] only in the administrator's file.
let
  inherit (builtins) attrNames concatStringsSep concatLists elem filter foldl' fromJSON genList
    head isAttrs isBool isFloat isInt isList isString length match readFile replaceStrings
    split stringLength substring tail toJSON toString;

  fail = msg: throw "nspawn-cage: ${msg}";

  maxLine = 190;

  # ---- string predicates (builtins only) -------------------------------
  hexDigit = n: substring n 1 "0123456789abcdef";
  # Control characters the C parser refuses: 0x01-0x1f except tab, and DEL.
  # (Nix strings cannot hold NUL.)  fromJSON is the only way to spell them.
  controlChars = map (n: fromJSON "\"\\u00${hexDigit (n / 16)}${hexDigit (n - n / 16 * 16)}\"")
    (filter (n: n != 9) (genList (n: n + 1) 31) ++ [ 127 ]);
  hasInfix = infix: s: replaceStrings [ infix ] [ "" ] s != s;
  hasNewline = s: hasInfix "\n" s || hasInfix "\r" s;
  hasControl = s: replaceStrings controlChars (map (_: "") controlChars) s != s;
  words = s: filter (w: isString w && w != "") (split "[ \t]+" s);
  isBlank = c: c == " " || c == "\t";
  firstChar = s: substring 0 1 s;
  lastChar = s: substring (stringLength s - 1) 1 s;
  unique = foldl' (acc: x: if elem x acc then acc else acc ++ [ x ]) [ ];
  isDerivation = x: isAttrs x && (x.type or null) == "derivation";
  all = p: l: foldl' (a: x: a && p x) true l;
  any = p: l: foldl' (a: x: a || p x) false l;
  optional = c: x: if c then [ x ] else [ ];

  # A value for the line "Key=Value" of `file`, or a throw saying why the
  # C parser would not read it back as written.
  lineOf = file: section: key: value:
    let
      what = "${file}: [${section}] ${key}=${toJSON value}";
      l = "${key}=${value}";
    in
    if !isString value then fail "${what}: not a string"
    else if hasNewline value then fail "${what}: the value contains a newline; configuration values are single lines"
    else if hasControl value then fail "${what}: the value contains a control character"
    else if value == "" then fail "${what}: empty value"
    else if isBlank (firstChar value) || isBlank (lastChar value) then
      fail "${what}: white space at the start or end of a value would be stripped; remove it"
    else if match ".*[ \t];.*" value != null then
      fail "${what}: ';' after white space would start a comment and cut the value; remove the blank before ';'"
    else if stringLength l > maxLine then
      fail "${what}: the line would be ${toString (stringLength l)} characters long; nspawn-cage reads at most ${toString maxLine}"
    else l;

  # One word of a list (Packages=, Pass=, AllowUsers=, ...).
  wordOf = file: section: key: w:
    if !isString w then fail "${file}: [${section}] ${key}=: ${toJSON w} is not a string"
    else if w == "" || words w != [ w ] then
      fail "${file}: [${section}] ${key}=: ${toJSON w} is not one word (list elements may not be empty or contain blanks)"
    else w;

  # ---- values ------------------------------------------------------------
  boolText = b: if b then "yes" else "no";

  # CPUs as the C parser reads them: an integer, or at most two decimals.
  # Floats are written from their decimal form (toString 0.5 is "0.500000").
  cpusText = v:
    if isInt v then toString v
    else if isFloat v then
      let
        m = match "([0-9]+)(\\.([0-9]*))?" (toString v);
        frac = if m == null || elemAt2 m == null then "" else trimZeros (elemAt2 m);
      in
      if m == null || stringLength frac > 2 then null
      else if frac == "" then head m else "${head m}.${frac}"
    else if isString v then v
    else null;
  elemAt2 = l: builtins.elemAt l 2;
  trimZeros = s: let m = match "([0-9]*[1-9])0*" s; in if m == null then "" else head m;

  scalarText = file: section: key: v:
    if isBool v then boolText v
    else if key == "CPUs" || key == "MaxCPUs" then
      (let t = cpusText v; in if t == null then fail "${file}: [${section}] ${key}=${toJSON v}: expected a number of CPUs with at most two decimals, or \"infinity\"" else t)
    else if isInt v then toString v
    else if isString v then v
    else fail "${file}: [${section}] ${key}=${toJSON v}: expected a string, number or boolean";

  # ---- sections ----------------------------------------------------------
  # Each renderer gives a list of lines; a section without lines is left out.
  scalar = file: section: key: v:
    optional (v != null) (lineOf file section key (scalarText file section key v));
  # Accumulating list: one line per element.
  each = file: section: key: l:
    map (w: lineOf file section key (wordOf file section key w)) l;
  # Replacing list (AllowUsers=, AllowNetwork=): one line holding all.
  joined = file: section: key: l:
    optional (l != null) (if l == [ ] then "${key}="
      else lineOf file section key (concatStringsSep " " (map (wordOf file section key) l)));
  # Set=NAME=VALUE, one line per variable, in name order.
  sets = file: section: attrs:
    map (n:
      let v = attrs.${n}; in
      if !isString v then fail "${file}: [${section}] Set=${n}: the value must be a string"
      else if hasNewline v then fail "${file}: [${section}] Set=${n}=${toJSON v}: the value contains a newline; configuration values are single lines"
      else if hasControl v then fail "${file}: [${section}] Set=${n}=${toJSON v}: the value contains a control character"
      else lineOf file section "Set" "${wordOf file section "Set" n}=${v}")
      (attrNames attrs);
  # Binds are written as they are (SOURCE[:DESTINATION]), one per line.
  binds = file: section: key: l: map (b: lineOf file section key b) l;

  section = name: lines: if lines == [ ] then [ ] else [ "[${name}]" ] ++ lines;

  text = header: sections:
    let ls = header ++ concatLists sections; in
    # comments are lines too: the parser's limit applies to every line
    concatStringsSep "\n" (map (l:
      if hasNewline l || stringLength l > maxLine then fail "internal: line ${toJSON l} cannot be written" else l) ls) + "\n";

  comment = s:
    let c = "# ${replaceStrings [ "\n" "\r" ] [ " " " " ] s}";
    in if stringLength c > maxLine then substring 0 maxLine c else c;

  get = s: sec: key: def: let v = (s.${sec} or { }).${key} or def; in if v == null then def else v;

  # ---- the administrator's file -------------------------------------------
  admin = settings:
    let
      f = "nspawn-cage.conf";
      g = get settings;
    in
    text [
      "# /etc/nspawn-cage/nspawn-cage.conf, generated from services.nspawn-cage.settings."
      "# See nspawn-cage.conf(5). Do not edit: changes are lost at the next rebuild."
    ] [
      (section "Cage" (
        scalar f "Cage" "Preset" (g "Cage" "Preset" null)
        ++ scalar f "Cage" "Command" (g "Cage" "Command" null)
        ++ each f "Cage" "Packages" (g "Cage" "Packages" [ ])
        ++ scalar f "Cage" "Nixpkgs" (g "Cage" "Nixpkgs" null)
        ++ scalar f "Cage" "Name" (g "Cage" "Name" null)))
      (section "Limits" (limitLines f (settings.Limits or { })))
      (section "Network" (scalar f "Network" "Mode" (g "Network" "Mode" null)))
      (section "Display" (displayLines f (settings.Display or { })))
      (section "Files" (
        binds f "Files" "Bind" (g "Files" "Bind" [ ])
        ++ binds f "Files" "BindReadOnly" (g "Files" "BindReadOnly" [ ])))
      (section "Environment" (
        each f "Environment" "Pass" (g "Environment" "Pass" [ ])
        ++ sets f "Environment" (g "Environment" "Set" { })))
      (section "Policy" (
        (let u = g "Policy" "AllowUsers" [ ]; in if u == [ ] then [ ] else joined f "Policy" "AllowUsers" u)
        ++ scalar f "Policy" "MaxCPUs" (g "Policy" "MaxCPUs" null)
        ++ scalar f "Policy" "MaxMemory" (g "Policy" "MaxMemory" null)
        ++ scalar f "Policy" "MaxSwap" (g "Policy" "MaxSwap" null)
        ++ scalar f "Policy" "MaxTasks" (g "Policy" "MaxTasks" null)
        ++ joined f "Policy" "AllowNetwork" (g "Policy" "AllowNetwork" null)
        ++ scalar f "Policy" "AllowDisplay" (g "Policy" "AllowDisplay" null)
        ++ scalar f "Policy" "AllowGPU" (g "Policy" "AllowGPU" null)
        ++ scalar f "Policy" "AllowX11Trusted" (g "Policy" "AllowX11Trusted" null)
        ++ scalar f "Policy" "AllowBinds" (g "Policy" "AllowBinds" null)))
    ];

  limitLines = f: l:
    scalar f "Limits" "CPUs" (l.CPUs or null)
    ++ scalar f "Limits" "Memory" (l.Memory or null)
    ++ scalar f "Limits" "Swap" (l.Swap or null)
    ++ scalar f "Limits" "Tasks" (l.Tasks or null);

  displayLines = f: d:
    scalar f "Display" "X11" (d.X11 or null)
    ++ scalar f "Display" "Wayland" (d.Wayland or null)
    ++ scalar f "Display" "GPU" (d.GPU or null)
    ++ scalar f "Display" "X11Trusted" (d.X11Trusted or null);

  # ---- a declared cage's file -----------------------------------------------
  # /etc/nspawn-cage/cages/NAME.conf: read by `nspawn-cage start NAME` as an
  # administrator layer after nspawn-cage.conf, with three keys valid only
  # there: Project=, User=, Toplevel= (the prebuilt closure: no Nix
  # evaluation at boot).  Package attribute names are written as Packages=
  # (for `nspawn-cage config`; the closure is Toplevel=), derivations as
  # comments.  Never a [Policy] section.
  cage = { name, toplevel, cage }:
    let
      f = "cages/${name}.conf";
      c = cage;
      pkgs = c.packages or [ ];
      env = c.environment or { };
    in
    text [
      "# /etc/nspawn-cage/cages/${name}.conf, generated from services.nspawn-cage.cages.${name}."
      "# Read by 'nspawn-cage start ${name}' (nspawn-cage@${name}.service) after nspawn-cage.conf."
      "# Do not edit: changes are lost at the next rebuild."
    ] [
      (section "Cage" (
        [ (lineOf f "Cage" "Project" c.project)
          (lineOf f "Cage" "User" c.user)
          (lineOf f "Cage" "Toplevel" "${toplevel}") ]
        ++ scalar f "Cage" "Preset" (c.preset or null)
        ++ each f "Cage" "Packages" (filter isString pkgs)
        ++ map (d: comment "Package ${d.name} (a derivation; in Toplevel=)") (filter isDerivation pkgs)))
      (section "Limits" (limitLines f (c.limits or { })))
      (section "Network" (scalar f "Network" "Mode" (c.network or null)))
      (section "Display" (displayLines f (c.display or { })))
      (section "Files" (
        binds f "Files" "Bind" (c.binds or [ ])
        ++ binds f "Files" "BindReadOnly" (c.bindsReadOnly or [ ])))
      (section "Environment" (
        each f "Environment" "Pass" (env.Pass or [ ])
        ++ sets f "Environment" (env.Set or { })))
    ];

  # ---- presets ----------------------------------------------------------------
  # The Packages= of a preset file (templates/presets/NAME.conf): accumulated,
  # an empty Packages= resets, as the C parser reads them.
  presetPackages = content:
    foldl' (acc: l:
      let m = match "Packages=(.*)" l; in
      if m == null then acc
      else let ws = words (head m); in if ws == [ ] then [ ] else acc ++ ws)
      [ ] (filter isString (split "\n" content));

  # ---- checks (mirroring the C parser, for build-time assertions) -------------
  # Each gives a list of messages; empty when the value is fine.
  infinity = "infinity";
  # Sizes in bytes; null for infinity; "invalid" when not a size.
  sizeBytes = s:
    if s == infinity then null
    else
      let
        m = if isString s then match "0*([0-9]+)([KMGT]?)" s else null;
        unit = if m == null then 1 else
          { "" = 1; K = 1024; M = 1048576; G = 1073741824; T = 1099511627776; }.${builtins.elemAt m 1};
        digits = if m == null then "" else head m;
        n = fromJSON digits;
      in
      if m == null || stringLength digits > 18 || n > 9223372036854775807 / unit then "invalid"
      else n * unit;
  # CPUs in hundredths; null for infinity; "invalid".
  cpusHundredths = v:
    if v == infinity then null
    else
      let
        t = cpusText v;
        m = if t == null then null else match "0*([0-9]+)(\\.([0-9]{1,2}))?" t;
        whole = fromJSON (head m);
        fracS = if elemAt2 m == null then "0" else elemAt2 m;
        frac = fromJSON (trimLeadingZeros fracS) * (if stringLength fracS == 1 then 10 else 1);
      in
      if m == null || stringLength (head m) > 5 || whole > 4096 || whole * 100 + frac == 0 then "invalid"
      else whole * 100 + frac;
  trimLeadingZeros = s: let m = match "0*([0-9]+)" s; in if m == null then "0" else head m;
  tasksCount = v:
    if v == infinity then null
    else if isInt v && v >= 1 && v <= 4194304 then v
    else "invalid";

  # value <= maximum, with null as infinity
  atMost = v: max: max == null || (v != null && v <= max);

  isUserName = s: isString s && match "[a-z_][a-z0-9_.-]{0,31}" s != null;
  isEnvName = s: isString s && match "[A-Za-z_][A-Za-z0-9_]{0,127}" s != null;
  isPackageName = s: isString s && stringLength s <= 128
    && match "[A-Za-z_][A-Za-z0-9_+-]*(\\.[A-Za-z_][A-Za-z0-9_+-]*)*" s != null;
  isPresetName = s: isString s && match "[a-z0-9-]{1,64}" s != null;
  isMachineName = s: isString s && stringLength s <= 64 && s != ".host"
    && match "[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?" s != null && !hasInfix ".." s;
  # Absolute, normalised, nothing systemd.nspawn(5) would need escaped
  # (path_is_safe_absolute() in config.c).
  isSafePath = p:
    isString p && firstChar p == "/" && stringLength p <= 4000 && !hasControl p
    && match ".*[:\\\"'].*" p == null
    && (p == "/" || all (c: c != "" && c != "." && c != ".." && !isBlank (firstChar c) && !isBlank (lastChar c))
      (tail (filter isString (split "/" p))));
  isBind = b: isString b &&
    (let parts = filter isString (split ":" b); in
     (length parts == 1 || length parts == 2) && all isSafePath parts && head parts != "/");
  isStorePath = p: isString p
    && match "/nix/store/[0123456789abcdfghijklmnpqrsvwxyz]{32}-[A-Za-z0-9+_?=-][A-Za-z0-9+._?=-]{0,210}" p != null;
  reservedEnv = [ "HOME" "USER" "LOGNAME" "SHELL" "PATH" "TERM" "DISPLAY" "WAYLAND_DISPLAY" "XAUTHORITY"
    "XDG_RUNTIME_DIR" "NOTIFY_SOCKET" "container" "container_uuid" ];
  isReservedEnv = n: elem n reservedEnv || match "(LISTEN_|SYSTEMD_).*" n != null;
  isNixpkgs = v: isString v && v != "" && stringLength v <= 256 && match ".*[ \t\"'\\\\$`;|&].*" v == null
    && (if firstChar v == "/" then isSafePath v
        else if firstChar v == "<" then lastChar v == ">"
        else true);
  modes = [ "off" "private" "host" ];

  # Checks of the keys every layer may set; `where` names the option.
  checkLimits = where: l:
    let
      cpus = l.CPUs or null; mem = l.Memory or null; swap = l.Swap or null; tasks = l.Tasks or null;
    in
    optional (cpus != null && cpusHundredths cpus == "invalid")
      "${where}.CPUs = ${toJSON cpus}: expected a number of CPUs from 0.01 to 4096 with at most two decimals, or \"infinity\""
    ++ optional (mem != null && sizeBytes mem == "invalid")
      "${where}.Memory = ${toJSON mem}: expected a size such as \"512M\" or \"4G\" (K, M, G, T are powers of 1024), or \"infinity\""
    ++ optional (mem != null && sizeBytes mem != "invalid" && sizeBytes mem != null && sizeBytes mem < 16777216)
      "${where}.Memory = ${toJSON mem}: a cage needs at least 16M"
    ++ optional (swap != null && sizeBytes swap == "invalid")
      "${where}.Swap = ${toJSON swap}: expected a size such as \"0\", \"512M\" or \"4G\", or \"infinity\""
    ++ optional (tasks != null && tasksCount tasks == "invalid")
      "${where}.Tasks = ${toJSON tasks}: expected a count from 1 to 4194304, or \"infinity\"";

  checkBinds = where: l:
    map (b: "${where} = ${toJSON b}: expected SOURCE[:DESTINATION] with absolute, normalised paths (no '.', '..', '//', trailing '/', quotes, backslashes or extra ':'), not the whole file system")
      (filter (b: !isBind b) l);

  checkEnvironment = where: pass: set:
    map (n: "${where}.Pass: ${toJSON n} is not an environment variable name (letters, digits, '_')")
      (filter (n: !isEnvName n) pass)
    ++ map (n: "${where}.Set: ${toJSON n} is not an environment variable name (letters, digits, '_')")
      (filter (n: !isEnvName n) (attrNames set))
    ++ map (n: "${where}.Set: ${n} is managed by nspawn-cage and cannot be set")
      (filter (n: isEnvName n && isReservedEnv n) (attrNames set));

  checkPackages = where: l:
    map (p: "${where}: ${toJSON p} is not a package attribute path (such as \"git\" or \"python3Packages.requests\")")
      (filter (p: isString p && !isPackageName p) l)
    ++ optional (length l > 512) "${where}: at most 512 packages";

  # What the [Policy] of `settings` allows, for comparisons.
  policy = settings:
    let p = settings.Policy or { }; in {
      MaxCPUs = let v = p.MaxCPUs or null; in if v == null then null else cpusHundredths v;
      MaxMemory = let v = p.MaxMemory or null; in if v == null then null else sizeBytes v;
      MaxSwap = let v = p.MaxSwap or null; in if v == null then null else sizeBytes v;
      MaxTasks = let v = p.MaxTasks or null; in if v == null then null else tasksCount v;
      raw = {
        MaxCPUs = p.MaxCPUs or null; MaxMemory = p.MaxMemory or null; MaxSwap = p.MaxSwap or null;
        MaxTasks = p.MaxTasks or null; AllowNetwork = p.AllowNetwork or null;
      };
      allowNetwork = let v = p.AllowNetwork or null; in if v == null then [ "off" "private" ] else v;
      allowDisplay = let v = p.AllowDisplay or null; in v == null || v;
      allowGPU = let v = p.AllowGPU or null; in v == null || v;
      allowX11Trusted = let v = p.AllowX11Trusted or null; in v == null || v;
      allowBinds = let v = p.AllowBinds or null; in v == null || v;
      allowUsers = p.AllowUsers or [ ];
    };

  # Limits, network, display and binds of one layer against the policy.
  checkAgainstPolicy = where: pol: { limits, network, display, bindsList }:
    let
      over = key: parse: maxKey: v:
        let x = if v == null then "invalid" else parse v; max = pol.${maxKey}; in
        optional (v != null && x != "invalid" && max != "invalid" && !atMost x max)
          "${where}.${key} = ${toJSON v} is above services.nspawn-cage.settings.Policy.${maxKey} = ${toJSON pol.raw.${maxKey}}; lower it or raise the maximum";
    in
    over "Limits.CPUs" cpusHundredths "MaxCPUs" (limits.CPUs or null)
    ++ over "Limits.Memory" sizeBytes "MaxMemory" (limits.Memory or null)
    ++ over "Limits.Swap" sizeBytes "MaxSwap" (limits.Swap or null)
    ++ over "Limits.Tasks" tasksCount "MaxTasks" (limits.Tasks or null)
    ++ optional (network != null && !elem network pol.allowNetwork)
      "${where}.Network.Mode = \"${network}\" is not allowed by services.nspawn-cage.settings.Policy.AllowNetwork (${if pol.raw.AllowNetwork == null then "default: " else ""}${concatStringsSep " " pol.allowNetwork}); allow it there or choose another mode"
    ++ optional (!pol.allowDisplay && ((display.X11 or null) == true || (display.Wayland or null) == true))
      "${where}: display forwarding (X11/Wayland) is on, but services.nspawn-cage.settings.Policy.AllowDisplay is false"
    ++ optional (!pol.allowGPU && (display.GPU or null) == true)
      "${where}: GPU is on, but services.nspawn-cage.settings.Policy.AllowGPU is false"
    ++ optional (!pol.allowX11Trusted && (display.X11Trusted or null) == true)
      "${where}: X11Trusted is on, but services.nspawn-cage.settings.Policy.AllowX11Trusted is false"
    ++ optional (!pol.allowBinds && bindsList != [ ])
      "${where}: binds are configured, but services.nspawn-cage.settings.Policy.AllowBinds is false";

  checkSettings = settings:
    let
      w = "services.nspawn-cage.settings";
      g = get settings;
      pol = policy settings;
      p = settings.Policy or { };
      allowNet = g "Policy" "AllowNetwork" null;
      mode = g "Network" "Mode" null;
    in
    optional (g "Cage" "Preset" null != null && !isPresetName (g "Cage" "Preset" null))
      "${w}.Cage.Preset = ${toJSON (g "Cage" "Preset" null)}: preset names use lower-case letters, digits and '-'"
    ++ optional (g "Cage" "Command" null != null && words (g "Cage" "Command" "") == [ ])
      "${w}.Cage.Command: empty command"
    ++ checkPackages "${w}.Cage.Packages" (g "Cage" "Packages" [ ])
    ++ optional (g "Cage" "Nixpkgs" null != null && !isNixpkgs (g "Cage" "Nixpkgs" null))
      "${w}.Cage.Nixpkgs = ${toJSON (g "Cage" "Nixpkgs" null)}: expected an absolute path, <channel> or a flake reference"
    ++ optional (g "Cage" "Name" null != null && !isMachineName (g "Cage" "Name" null))
      "${w}.Cage.Name = ${toJSON (g "Cage" "Name" null)}: not a valid machine name (1-64 letters, digits, '-', '_', '.')"
    ++ checkLimits "${w}.Limits" (settings.Limits or { })
    ++ checkLimits "${w}.Policy" {
      CPUs = p.MaxCPUs or null; Memory = null; Swap = p.MaxSwap or null; Tasks = p.MaxTasks or null;
    }
    ++ optional ((p.MaxMemory or null) != null && sizeBytes p.MaxMemory == "invalid")
      "${w}.Policy.MaxMemory = ${toJSON p.MaxMemory}: expected a size such as \"16G\", or \"infinity\""
    ++ checkBinds "${w}.Files.Bind" (g "Files" "Bind" [ ])
    ++ checkBinds "${w}.Files.BindReadOnly" (g "Files" "BindReadOnly" [ ])
    ++ checkEnvironment "${w}.Environment" (g "Environment" "Pass" [ ]) (g "Environment" "Set" { })
    ++ map (u: "${w}.Policy.AllowUsers: ${toJSON u} is not a user name (or \"*\")")
      (filter (u: u != "*" && !isUserName u) (g "Policy" "AllowUsers" [ ]))
    ++ map (m: "${w}.Policy.AllowNetwork: ${toJSON m} is not a network mode (off, private, host)")
      (filter (m: !elem m modes) (if allowNet == null then [ ] else allowNet))
    ++ optional (allowNet == [ ])
      "${w}.Policy.AllowNetwork = [ ] allows no network mode at all, not even \"off\"; leave it null or list the modes"
    ++ optional (allowNet != null && allowNet != [ ] && mode == null && !elem "off" allowNet)
      "${w}.Policy.AllowNetwork does not include the default Network.Mode \"off\"; add \"off\" or set ${w}.Network.Mode to an allowed mode"
    ++ checkAgainstPolicy w pol {
      limits = settings.Limits or { };
      network = mode;
      display = settings.Display or { };
      bindsList = g "Files" "Bind" [ ] ++ g "Files" "BindReadOnly" [ ];
    };

  checkCage = { name, cage, settings ? { } }:
    let
      w = "services.nspawn-cage.cages.${name}";
      c = cage;
      pol = policy settings;
      env = c.environment or { };
      bindsList = (c.binds or [ ]) ++ (c.bindsReadOnly or [ ]);
    in
    optional (!isMachineName name)
      "${w}: '${name}' is not a valid cage name (1-64 letters, digits, '-', '_', '.'; not starting or ending with '.' or '-')"
    ++ optional (!isSafePath (c.project or null) || c.project == "/")
      "${w}.project = ${toJSON (c.project or null)}: expected an absolute, normalised directory path (no '.', '..', '//', trailing '/', ':', quotes)"
    ++ optional (!isUserName (c.user or null))
      "${w}.user = ${toJSON (c.user or null)}: not a valid user name"
    ++ optional ((c.user or null) == "root")
      "${w}.user = \"root\": a cage's user must not be root"
    ++ optional ((c.preset or null) != null && !isPresetName c.preset)
      "${w}.preset = ${toJSON c.preset}: preset names use lower-case letters, digits and '-'"
    ++ checkPackages "${w}.packages" (c.packages or [ ])
    ++ checkLimits "${w}.limits" (c.limits or { })
    ++ optional ((c.network or null) != null && !elem c.network modes)
      "${w}.network = ${toJSON c.network}: expected off, private or host"
    ++ checkBinds "${w}.binds" (c.binds or [ ])
    ++ checkBinds "${w}.bindsReadOnly" (c.bindsReadOnly or [ ])
    ++ checkEnvironment "${w}.environment" (env.Pass or [ ]) (env.Set or { })
    ++ optional (pol.allowUsers != [ ] && !elem "*" pol.allowUsers && !elem (c.user or null) pol.allowUsers)
      "${w}.user = ${toJSON (c.user or null)} is not in services.nspawn-cage.settings.Policy.AllowUsers (${concatStringsSep " " pol.allowUsers})"
    ++ map (m: replaceStrings [ "${w}.Limits." "${w}.Network.Mode" ] [ "${w}.limits." "${w}.network" ] m)
      (checkAgainstPolicy w pol {
        limits = c.limits or { };
        network = c.network or null;
        display = c.display or { };
        inherit bindsList;
      });
in
{
  inherit admin cage presetPackages checkSettings checkCage;
  # exposed for the module and the tests
  inherit sizeBytes cpusHundredths cpusText isMachineName isSafePath isStorePath isUserName
    isPackageName isEnvName unique isDerivation maxLine;
}

"""The Faust application: intake (accept / reject / de-duplicate) and the derived streams."""

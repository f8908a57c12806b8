"""The console proxy: lets a browser reach a guest's VNC console through a
single-use token that the compute API handed out (os-getVNCConsole)."""

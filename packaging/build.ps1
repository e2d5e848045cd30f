# Build the Windows bundle: dist\CloudAIArtStudio\CloudAIArtStudio.exe
# Run from the repository root in PowerShell, with Python 3.12+ from python.org or the py launcher:
#   powershell -ExecutionPolicy Bypass -File packaging\build.ps1 [-Smoke]
# build.py makes its own .venv-bundle and runs the smoke test with that venv's python.
param([switch]$Smoke)
$ErrorActionPreference = "Stop"
Set-Location (Split-Path -Parent $PSScriptRoot)
# $args is PowerShell's own variable, hence $pyArgs. A py launcher without 3.12 exits non-zero
# rather than throwing, so the exit code decides.
$py = "python"
$pyArgs = @()
if (Get-Command py -ErrorAction SilentlyContinue) {
    & py -3.12 --version *> $null
    if ($LASTEXITCODE -eq 0) { $py = "py"; $pyArgs = @("-3.12") }
}
$buildArgs = $pyArgs + @("packaging\build.py")
if ($Smoke) { $buildArgs += "--smoke" }
& $py @buildArgs
if ($LASTEXITCODE -ne 0) { throw "build failed with exit code $LASTEXITCODE" }
Write-Host "Built dist\CloudAIArtStudio. Zip that folder or wrap it in an installer (Inno Setup / MSIX)."

# Build the Windows bundle: dist\CloudAIArtStudio\CloudAIArtStudio.exe
# Run from the repository root in PowerShell, with Python 3.12+ from python.org or the py launcher:
#   powershell -ExecutionPolicy Bypass -File packaging\build.ps1 [-Smoke]
param([switch]$Smoke)
$ErrorActionPreference = "Stop"
Set-Location (Split-Path -Parent $PSScriptRoot)
$py = "py"
try { & $py -3.12 --version | Out-Null; $args = @("-3.12") } catch { $py = "python"; $args = @() }
$buildArgs = $args + @("packaging\build.py")
if ($Smoke) { $buildArgs += "--smoke" }
& $py @buildArgs
if ($LASTEXITCODE -ne 0) { throw "build failed with exit code $LASTEXITCODE" }
Write-Host "Built dist\CloudAIArtStudio. Zip that folder or wrap it in an installer (Inno Setup / MSIX)."
